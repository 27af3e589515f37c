/**
 * The API contract of a mesh node (SPEC §3), shared by the node's routes, the CLI, the
 * console and the tests: every route's schemas once, the types derived from them, and
 * one typed client. Importable by the browser build: nothing here imports node-only code.
 */

export {
  ApiClient,
  type ApiClientInit,
  ApiError,
  type ApiSigner,
  type CallArgs,
  createApiClient,
  type RequestOptions,
  sessionChallengeText,
} from './client.ts'
// issue 14: one mention parser for the node and the console
export * from './mentions.ts'
export { type RouteName, type RouteSpec, type Routes, routes } from './routes.ts'
export * from './schemas/audit.ts'
// accountability across meshes (SPEC §11)
export * from './schemas/audit-merkle.ts'
// agents in foreign rooms (SPEC §8, way 2)
export * from './schemas/capability-session.ts'
export * from './schemas/common.ts'
export * from './schemas/connections.ts'
// files in rooms (issue 18)
export * from './schemas/files.ts'
// coordination fees (SPEC §10)
export * from './schemas/ledger.ts'
// relay ledger forgive (SPEC §10)
export * from './schemas/ledger-forgive.ts'
export * from './schemas/members.ts'
// reachable by URL (SPEC §10)
export * from './schemas/mesh-profile.ts'
// the model proxy (SPEC §13)
export * from './schemas/model.ts'
// outbound invocation over libp2p
export * from './schemas/outbound.ts'
export * from './schemas/policy.ts'
export * from './schemas/registry.ts'
// Revocation people can use (SPEC §9)
export * from './schemas/revocation.ts'
// room lifecycle and consent (SPEC §9)
export * from './schemas/room-lifecycle.ts'
// Members everywhere: room roles
export * from './schemas/room-members.ts'
export * from './schemas/rooms.ts'
export * from './schemas/session.ts'
// tasks across meshes (SPEC §13)
export * from './schemas/tasks.ts'
export * from './schemas/trust.ts'
export * from './task-entries.ts'
export type * from './types.ts'
