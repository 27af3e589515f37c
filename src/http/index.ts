/** HTTP: the fastify app with the SPEC §3 error shape, and the routes every node serves. */

export { DEFAULT_CONNECTION_LIMITS, type HttpConnectionLimits } from './connection-limits.ts'
export { CONSOLE_ROOT, type ConsoleRoutesInit, registerConsole } from './console-routes.ts'
export {
  type CoreRoutesInit,
  type HealthInfo,
  healthOrUnavailable,
  registerCoreRoutes,
} from './core-routes.ts'
export { createHttpApp, type HttpAppInit, toHttpError } from './http-app.ts'
export { type OriginGuardInit, registerOriginGuard } from './origin-guard.ts'
export { RATE_LIMIT_DEFAULTS, type RateClass, type RateLimit, type RateLimitsInit } from './rate-limits.ts'
export { bearerToken, registerSessionRoutes, requireSession } from './session-routes.ts'
