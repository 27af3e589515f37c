/** The mesh manifest (/.well-known/mesh-manifest.json); its JSON Schema is manifest/mesh-manifest.schema.json. */
export {
  type AgentCard,
  type CapabilityInvocation,
  type FederationSettings,
  type InvocationTransport,
  type KeyHistoryEntry,
  type MeshManifest,
  signManifest,
  type UnsignedManifest,
  verifyManifest,
} from './mesh-manifest.ts'

/** Where the schema lives, for validators and tests. */
export const MANIFEST_SCHEMA_URL = new URL('../../manifest/mesh-manifest.schema.json', import.meta.url)

// reachable by URL (SPEC §10)
export {
  checkManifest,
  dialableAddresses,
  type FetchedManifest,
  type FetchManifestOptions,
  fetchManifest,
  isHttpTarget,
  MANIFEST_FETCH_LIMITS,
  MANIFEST_PATH,
  manifestUrlOf,
} from './fetch-manifest.ts'
