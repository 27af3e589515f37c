/**
 * Registry: the platform registry of seed 003 (SPEC §3 "Discovery and registry").
 * Meshes POST signed heartbeats; the registry keeps the latest per mesh (persisted)
 * and serves the public list, each mesh's status computed when it is read. A node
 * runs a `HeartbeatClient` to announce itself to a registry, and reads the list through
 * `createRegistryBootstrap` to find meshes to dial when alone.
 */
import { HeartbeatClient, type HeartbeatClientInit } from './heartbeat-client.ts'
import { RegistryService, type RegistryServiceInit } from './registry-service.ts'

export {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_LIMITS,
  HEARTBEAT_MAX_CLOCK_SKEW_MS,
  HEARTBEAT_STATUSES,
  type Heartbeat,
  type HeartbeatContent,
  type HeartbeatStatus,
  heartbeatSchema,
  signHeartbeat,
  type VerifyHeartbeatOptions,
  verifyHeartbeat,
} from './heartbeat.ts'
export {
  HeartbeatClient,
  type HeartbeatClientInit,
  type HeartbeatInfo,
  type HeartbeatResult,
} from './heartbeat-client.ts'
export {
  MESH_LIST_LIMITS,
  MESH_LIST_SORTS,
  MESH_STATUSES,
  type MeshListQuery,
  type MeshListSort,
  type MeshPage,
  type MeshStatus,
  type PublicMesh,
  type PublicMeshSource,
  pageMeshes,
} from './mesh-list.ts'
export { checkPow, computePow, DEFAULT_POW_BITS, MAX_POW_BITS, powZeroBits } from './pow.ts'
export {
  createRegistryBootstrap,
  type RegistryBootstrap,
  type RegistryBootstrapInit,
  type RegistryTargetsOptions,
} from './registry-bootstrap.ts'
export {
  computeMeshStatus,
  type HeartbeatOptions,
  type HeartbeatReceipt,
  RegistryService,
  type RegistryServiceInit,
} from './registry-service.ts'

export function createRegistryService(init: RegistryServiceInit): RegistryService {
  return new RegistryService(init)
}

export function createHeartbeatClient(init: HeartbeatClientInit): HeartbeatClient {
  return new HeartbeatClient(init)
}
