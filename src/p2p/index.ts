/**
 * p2p: the libp2p host (TCP, Noise, Yamux, identify, ping, the mesh kad-dht), the
 * signed mesh record in the DHT (validator, selector, replay guard), record exchange
 * with connected neighbours, and discovery through the mesh directory.
 */

// reachable by URL (SPEC §10): what records and heartbeats say of a mesh beyond its addresses
export { MESH_PROFILE_LIMITS } from '../api/schemas/mesh-profile.ts'
export type { MeshProfile } from '../api/types.ts'
export {
  MESH_DIRECTORY_CID,
  MESH_DIRECTORY_NAME,
  MESH_KAD_PROTOCOL,
  MESH_RECORD_PROTOCOL,
} from './constants.ts'
// circuit churn (SPEC §10): reuse an open (limited) connection
export { addDialAddresses, dialAddresses, openStream, reusableConnection } from './dial.ts'
export {
  DiscoveredMeshBook,
  type DiscoveredMeshBookComponents,
  type DiscoveredMeshBookInit,
} from './discovered-meshes.ts'
export {
  type BootstrapSource,
  type BootstrapTargetsOptions,
  createMeshDiscovery,
  type DiscoveredMesh,
  type LookupOptions,
  type LookupResult,
  type MeshContentUpdate,
  MeshDiscovery,
  type MeshDiscoveryComponents,
  type MeshDiscoveryInit,
  type MeshStatus,
} from './discovery.ts'
export {
  createMeshDatastore,
  createMeshLibp2p,
  DEFAULT_LISTEN,
  DEFAULT_MAX_CONNECTIONS,
  type DhtVariant,
  MESH_DHT_SELECTORS,
  MESH_DHT_VALIDATORS,
  type MeshLibp2p,
  type MeshLibp2pInit,
  type MeshServices,
} from './host.ts'
export {
  checkMeshRecord,
  compareMeshRecords,
  createMeshRecord,
  currentDidOf,
  dhtRecordKey,
  didFromMeshRecordKey,
  encodeMeshRecord,
  MESH_RECORD_MAX_BYTES,
  MESH_RECORD_MAX_MULTIADDRS,
  MESH_RECORD_MAX_SKEW_MS,
  MESH_RECORD_NAMESPACE,
  type MeshRecord,
  type MeshRecordContent,
  type MeshRecordKeys,
  meshRecordKey,
  parseMeshRecord,
  selectMeshRecord,
  validateMeshRecord,
} from './mesh-record.ts'
export {
  createNeighbourRecords,
  kadIdOf,
  type NeighbourAnswer,
  type NeighbourGetOptions,
  NeighbourRecords,
  type NeighbourRecordsComponents,
  type NeighbourRecordsInit,
} from './neighbour-records.ts'
// reachability (SPEC §10)
export {
  isRelayAddress,
  meshRelayServer,
  RELAY_SERVICE_DEFAULTS,
  type Reachability,
  ReachabilityService,
  type RelayServiceInit,
  relayListenAddress,
} from './reachability.ts'
export { RecordGuardDatastore, type RecordGuardInit, type SyncSelectFn } from './record-datastore.ts'
// coordination fees (SPEC §10)
export { RelayMeter, type TrafficCount } from './relay-meter.ts'
