/** HTTP: the fastify app with the SPEC §3 error shape, and every route, one plugin per area. */

export type { FastifyInstance } from 'fastify'
export { DEFAULT_CONNECTION_LIMITS, type HttpConnectionLimits } from './connection-limits.ts'
// issue 14: a busy HTTP port is MESH_CONFLICT
export { createHttpApp, type HttpAppInit, listenOrConflict, toHttpError } from './http-app.ts'
export { type NodeRoutesInit, registerNodeRoutes } from './node-routes.ts'
export { type OriginGuardInit, registerOriginGuard } from './origin-guard.ts'
export { RATE_LIMIT_DEFAULTS, type RateClass, type RateLimit, type RateLimitsInit } from './rate-limits.ts'
export { type RegistryServerRoutesInit, registerRegistryServerRoutes } from './registry-server-routes.ts'
export { type AuditRoutesInit, auditRoutes } from './routes/audit.ts'
// accountability across meshes (SPEC §11)
export { type AuditMerkleRoutesInit, auditMerkleRoutes } from './routes/audit-merkle.ts'
export { type AuthorityRoutesInit, authorityRoutes } from './routes/authority.ts'
export { type ConnectionRoutesInit, connectionRoutes } from './routes/connections.ts'
export { CONSOLE_ROOT, type ConsoleRoutesInit, registerConsole } from './routes/console.ts'
export { type CoreRoutesInit, coreRoutes, type HealthInfo, healthOrUnavailable } from './routes/core.ts'
export { invokeRoutes } from './routes/invoke.ts'
export { type KeyRoutesInit, keyRoutes } from './routes/keys.ts'
export { type PolicyRoutesInit, policyRoutes } from './routes/policy.ts'
export { meshListRoutes, type RegistryRoutesInit, registryRoutes } from './routes/registry.ts'
export { type RejectedRoutesInit, rejectedRoutes } from './routes/rejected.ts'
export { type RoomRoutesInit, roomRoutes } from './routes/rooms.ts'
export {
  bearerToken,
  decorateSessions,
  registerSessionRoutes,
  requireSession,
  sessionOf,
} from './routes/session.ts'
export { type YjsRoutesInit, yjsRoutes } from './routes/yjs.ts'
