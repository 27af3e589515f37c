import type { Ed25519KeyPair, RotationRecord } from '../identity/index.ts'
import { signCanonical, verifyCanonical } from '../identity/index.ts'

/** A2A Agent Card fields, plus the agent's did. */
export interface AgentCard {
  did: string
  /** The resource `agent/invoke` acts on: `<mesh did>/agents/<agent id>`. */
  resource?: string
  name: string
  description: string
  url?: string
  version: string
  capabilities: { streaming?: boolean; pushNotifications?: boolean; stateTransitionHistory?: boolean }
  defaultInputModes?: string[]
  defaultOutputModes?: string[]
  skills: Array<{ id: string; name: string; description: string; tags?: string[]; examples?: string[] }>
}

export interface FederationSettings {
  mode: 'open' | 'allowlist' | 'closed'
  autoAccept: boolean
  maxForeignParticipantsPerRoom: number
  maxBackfillEventsPerRequest: number
}

/**
 * One key the mesh has held. The first is its identity (genesis did); each later one
 * was introduced by `rotation`, the full rotation record (identity/rotation.ts), whose
 * `sigPrevious` is `rotationSignature`; `validUntil` is when the next key took over.
 */
export interface KeyHistoryEntry {
  did: string
  validFrom: string
  validUntil?: string
  rotationSignature?: string
  rotation?: RotationRecord
}

/**
 * Where an invocation of a listed capability is sent: a ucanto invocation token
 * (base64url CAR) addressed to this mesh, with its proofs, in the body `{ucan,
 * credentials?, presentation?}` of an HTTP request to `endpoints.http` + `path`, or over
 * a libp2p `protocol` from a connected mesh.
 */
export type InvocationTransport =
  | { transport: 'http'; method: 'POST'; path: string }
  | { transport: 'libp2p'; protocol: string }

/**
 * How a foreign principal invokes one capability the manifest lists (SPEC §8): the
 * resource it acts on, the caveats the invocation carries, the least trusted tier that
 * may invoke it, and where to send it. A chain from this mesh's architect (a human) to
 * the invoker must grant it.
 */
export interface CapabilityInvocation {
  /**
   * The resource (`with`) as a template: `{did}` is this manifest's did; `{agent}` an
   * agent's id (its full resource is `agents[].resource`); `{room}` a room's id (the chain
   * that grants it names it).
   */
  with: string
  /** The invocation's caveats, as a JSON Schema of an object. */
  nb: {
    type: 'object'
    properties: Record<string, Record<string, unknown>>
    required?: string[]
    additionalProperties?: boolean
  }
  /** 4: any foreign principal with a chain (participation); 3: one this mesh has promoted to tier 3 or better. */
  tier: 3 | 4
  via: InvocationTransport[]
}

export interface MeshManifest {
  manifestVersion: '1.0'
  name: string
  description?: string
  version: string
  did: string
  peerId: string
  architect?: string
  endpoints: {
    http: string
    libp2p: string[]
    yjs?: string
    registry?: string
    // phase-1 HTTP federation (SPEC §12): where federation envelopes are POSTed
    federation?: { request: string; accepted: string; declined: string; disconnect: string; send: string }
  }
  protocolVersions: string[]
  /** What other meshes' principals may invoke here, given a chain; `invocation` says how, for each. */
  capabilities: string[]
  invocation: Record<string, CapabilityInvocation>
  agents: AgentCard[]
  federation: FederationSettings
  keyHistory: KeyHistoryEntry[]
  issuedAt: string
  signature: { alg: 'Ed25519'; keyId: string; value: string }
}

export type UnsignedManifest = Omit<
  MeshManifest,
  'signature' | 'manifestVersion' | 'issuedAt' | 'did' | 'peerId'
>

/** Builds and signs the manifest with the mesh key (the signature covers every other field). */
export function signManifest(key: Ed25519KeyPair, content: UnsignedManifest, now = new Date()): MeshManifest {
  const unsigned = {
    manifestVersion: '1.0' as const,
    ...content,
    did: key.did,
    peerId: key.peerId().toString(),
    issuedAt: now.toISOString(),
  }
  return { ...unsigned, signature: { alg: 'Ed25519', keyId: key.did, value: signCanonical(key, unsigned) } }
}

/** True when the manifest is signed by the key it names as its did. */
export function verifyManifest(manifest: MeshManifest): boolean {
  const { signature, ...unsigned } = manifest
  return signature?.keyId === manifest.did && verifyCanonical(manifest.did, unsigned, signature.value)
}
