import type { RouteName } from './routes.ts'

/** The route of each signed act on a connection (`connection/<act>`), for the CLI and the console. */
export const CONNECTION_ACT_ROUTES = {
  accept: 'acceptConnection',
  decline: 'declineConnection',
  disconnect: 'disconnectConnection',
  // paused links (issue 13)
  pause: 'pauseConnection',
  resume: 'resumeConnection',
} as const satisfies Record<string, RouteName>
