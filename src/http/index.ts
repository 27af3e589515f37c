/** HTTP: the fastify app with the SPEC §3 error shape, and the routes every node serves. */

export { CONSOLE_ROOT, type ConsoleRoutesInit, registerConsole } from './console-routes.ts'
export { type CoreRoutesInit, type HealthInfo, registerCoreRoutes } from './core-routes.ts'
export { createHttpApp, type HttpAppInit, toHttpError } from './http-app.ts'
export { type OriginGuardInit, registerOriginGuard } from './origin-guard.ts'
export { bearerToken, registerSessionRoutes, requireSession } from './session-routes.ts'
