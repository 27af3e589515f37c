import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import { sessionBodySchema } from '../../api/index.ts'
import type { Session, SessionService } from '../../auth/index.ts'
import { UnauthenticatedError } from '../../errors.ts'
import { markSessionGuard } from '../rate-limits.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The one session guard (`decorateSessions`): every route behind a session runs it
     * as `onRequest`, which sets `request.session` or refuses.
     */
    requireSession: onRequestAsyncHookHandler
  }
  interface FastifyRequest {
    session?: Session
  }
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (typeof header !== 'string') return undefined
  const match = /^Bearer ([A-Za-z0-9_-]+)$/.exec(header)
  return match?.[1]
}

/**
 * A hook that admits only requests with a valid session, and records who made them.
 * Register it as `onRequest`: it then runs before the body is read and validated, so
 * a caller without a session learns nothing of a route's schema (and costs no parse).
 * Its request is charged to the session's principal (http.rateLimits.session); a refused
 * token to the source IP (http.rateLimits.anonymous), and answered 429 once that bucket
 * is empty.
 */
export function requireSession(sessions: SessionService) {
  return markSessionGuard(async (request: FastifyRequest): Promise<void> => {
    // agents in foreign rooms: a capability session the capability guard already admitted
    if (request.capabilitySession !== undefined) return
    const limits = request.server.meshRateLimits
    try {
      request.session = await sessions.authenticate(bearerToken(request))
    } catch (err) {
      await limits?.authenticationFailed(request)
      throw err
    }
    await limits?.authenticated(request)
  })
}

/**
 * Gives the app its session guard, `app.requireSession`. Call it on the root app,
 * before the route plugins: they inherit the decorator (a decorator set inside an
 * encapsulated plugin would be seen by that plugin alone).
 */
export function decorateSessions(app: FastifyInstance, sessions: SessionService): void {
  app.decorate('requireSession', requireSession(sessions))
}

/** The session of a request that passed `requireSession`. */
export function sessionOf(request: FastifyRequest): Session {
  if (request.session === undefined) throw new UnauthenticatedError('a session is required')
  return request.session
}

/**
 * SPEC §3 challenge/response sign-in for this mesh's humans and agents, and logout;
 * also gives the app its session guard (`decorateSessions`). Call it on the root app.
 */
export function registerSessionRoutes(fastify: FastifyInstance, sessions: SessionService): void {
  decorateSessions(fastify, sessions)
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.get('/api/session/challenge', async () => sessions.challenge())

  app.post('/api/session', { schema: { body: sessionBodySchema } }, async (request) =>
    sessions.open(request.body),
  )

  // Logout: the token fails at once, and its live y-websockets are closed (4401).
  app.delete('/api/session', { onRequest: app.requireSession }, async (request, reply) => {
    await sessions.revoke(bearerToken(request) as string)
    return reply.status(204).send()
  })

  app.get('/api/me', { onRequest: app.requireSession }, async (request) => {
    const session = sessionOf(request)
    return { did: session.did, role: session.role, expiresAt: session.expiresAt }
  })
}
