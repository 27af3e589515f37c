import { MESH_NODE_VERSION } from '../config.ts'
// phase-1 HTTP federation (SPEC §12)
import { HTTP_FEDERATION_PATHS } from '../connections/index.ts'
import type { Ed25519KeyPair, MeshKeyHistory } from '../identity/index.ts'
import {
  type AgentCard,
  type FederationSettings,
  type MeshManifest,
  signManifest,
} from '../manifest/index.ts'
import type { MeshInfo } from '../mesh-info.ts'
import { invocableNow } from './invocable.ts'

export { INVOCABLE_CAPABILITIES } from './invocable.ts'

export interface ManifestInput {
  /** The current mesh key: it signs the manifest. */
  key: Ed25519KeyPair
  info: MeshInfo
  history: MeshKeyHistory
  httpUrl: string
  multiaddrs: string[]
  protocolVersions: string[]
  /** Whether this node serves a registry, at its HTTP address. */
  serveRegistry: boolean
  agents: AgentCard[]
  federation: FederationSettings
  // the model proxy (SPEC §13): whether it has an upstream (model/invoke is listed then)
  model?: boolean
  /** reachable by URL (SPEC §10): a line about the mesh. */
  description?: string
}

/** The mesh's signed manifest (/.well-known/mesh-manifest.json). */
export function buildManifest(input: ManifestInput): MeshManifest {
  const { info } = input
  const endpoints: MeshManifest['endpoints'] = { http: input.httpUrl, libp2p: input.multiaddrs }
  if (input.serveRegistry) endpoints.registry = input.httpUrl
  // phase-1 HTTP federation (SPEC §12)
  endpoints.federation = federationEndpoints(input.httpUrl)
  return signManifest(input.key, {
    name: info.name,
    ...(input.description !== undefined ? { description: input.description } : {}), // SPEC §10
    version: MESH_NODE_VERSION,
    architect: info.architectDid,
    endpoints,
    protocolVersions: input.protocolVersions,
    ...invocableNow({ agents: input.agents, model: input.model === true }),
    agents: input.agents,
    federation: input.federation,
    keyHistory: keyHistoryOf(input.history, info.createdAt),
  })
}

/**
 * The manifest's keyHistory: every key with its validity and the record that introduced
 * it; the genesis key is valid from the mesh's creation.
 */
export function keyHistoryOf(history: MeshKeyHistory, createdAt: string): MeshManifest['keyHistory'] {
  return history.keys.map((did, i) => {
    const introduced = history.records[i - 1]
    const retiredBy = history.records[i]
    return {
      did,
      validFrom: introduced === undefined ? createdAt : new Date(introduced.ts).toISOString(),
      ...(retiredBy !== undefined ? { validUntil: new Date(retiredBy.ts).toISOString() } : {}),
      ...(introduced !== undefined
        ? { rotationSignature: introduced.sigPrevious, rotation: introduced }
        : {}),
    }
  })
}

// phase-1 HTTP federation (SPEC §12)
/** The manifest's `endpoints.federation`: each path of the HTTP face under `httpUrl`. */
export function federationEndpoints(httpUrl: string): NonNullable<MeshManifest['endpoints']['federation']> {
  const base = httpUrl.replace(/\/+$/, '')
  const P = HTTP_FEDERATION_PATHS
  return {
    request: base + P.request,
    accepted: base + P.accepted,
    declined: base + P.declined,
    disconnect: base + P.disconnect,
    send: base + P.send,
  }
}
