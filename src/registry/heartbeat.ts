import { multiaddr } from '@multiformats/multiaddr'
// reachable by URL (SPEC §10)
import { meshProfileProperties, pickMeshProfile } from '../api/schemas/mesh-profile.ts'
import { MESH_REPORT_FIELDS, MESH_STATUSES } from '../api/schemas/registry.ts'
import type { MeshProfile } from '../api/types.ts'
import { BadRequestError, ClockSkewError, SignatureMismatchError } from '../errors.ts'
import {
  type Ed25519KeyPair,
  peerIdFromDid,
  type RotationRecord,
  rotationChainSchema,
  signCanonical,
  verifyCanonical,
  verifyRotationChain,
} from '../identity/index.ts'
import { lazyValidator } from '../schema.ts'
import { POW_NONCE_MAX_LENGTH } from './pow.ts'

/**
 * The registry heartbeat (SPEC §3 "Discovery and registry"), a JSON object POSTed
 * to `/api/meshes/heartbeat`:
 *
 * ```
 * {did, peerId, name, multiaddrs:[string], status:'online'|'idle'|'offline',
 *  members, bots, rooms, version, protocolVersions:[string], seq, ts,
 *  rotations?:[RotationRecord], pow?:string, signature}
 * ```
 *
 * `signature` is the mesh key's Ed25519 signature (base64url) over the RFC 8785
 * canonical JSON of every other field, so field order on the wire does not matter
 * and no field can be added or changed without breaking it. The signer is the
 * did:key in `did`; `peerId` is the same key written as a libp2p PeerId. `seq`
 * only grows per mesh; `ts` is the sender's clock in ms since the epoch.
 * `status:'offline'` is sent once by a node shutting down cleanly.
 *
 * A mesh that rotated its key adds `rotations`, its chain of rotation records from its
 * identity (genesis did) to `did` (identity/rotation.ts). The registry moves the mesh's
 * entry from an older key to `did` only through that chain, and refuses the retired keys.
 *
 * `pow` (optional, signed like every other field) is the did's admission stamp
 * (pow.ts): a registry lists a did it does not know only with a stamp of its difficulty,
 * and refuses one without with MESH_FORBIDDEN, `details: {reason: 'pow-required',
 * powBits}`. Known meshes may omit it.
 */

/** What a heartbeat may report; 'offline' only in the last one a node sends before it stops. */
export const HEARTBEAT_STATUSES = MESH_STATUSES
export type HeartbeatStatus = (typeof HEARTBEAT_STATUSES)[number]

/** Bounds on what one mesh may put into a registry. */
export const HEARTBEAT_LIMITS = {
  nameMaxLength: 64,
  maxMultiaddrs: 16,
  multiaddrMaxLength: 256,
  versionMaxLength: 64,
  maxProtocolVersions: 16,
  protocolVersionMaxLength: 128,
  maxCount: 1_000_000_000,
} as const

/** Default time between two heartbeats of a mesh, for the client and for the registry's statuses. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 30_000

/** How far a heartbeat's `ts` may be from the receiver's clock (SPEC §3); default of the verifier. */
export const HEARTBEAT_MAX_CLOCK_SKEW_MS = 60_000

/**
 * A heartbeat without its signature: exactly the object that is signed. The profile
 * fields (`http`, `manifestUrl`, `description`, `agents`, `capabilities`; SPEC §10) are
 * optional and signed like the rest.
 */
export interface HeartbeatContent extends MeshProfile {
  did: string
  peerId: string
  name: string
  multiaddrs: string[]
  status: HeartbeatStatus
  members: number
  bots: number
  rooms: number
  version: string
  protocolVersions: string[]
  seq: number
  ts: number
  /** The rotation chain from the mesh's identity to `did`; only once the mesh has rotated. */
  rotations?: RotationRecord[]
  /** The did's admission stamp (pow.ts); needed only by a registry that does not know the did yet. */
  pow?: string
}

export interface Heartbeat extends HeartbeatContent {
  signature: string
}

const count = { type: 'integer', minimum: 0, maximum: HEARTBEAT_LIMITS.maxCount } as const
// Printable text only: names are shown in other meshes' consoles and logs.
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]+$'

/**
 * The JSON Schema of a heartbeat, shared by the HTTP route (fastify validates the
 * body with it) and by `verifyHeartbeat`, so both refuse exactly the same inputs.
 */
export const heartbeatSchema = {
  type: 'object',
  additionalProperties: false,
  required: [...MESH_REPORT_FIELDS, 'seq', 'ts', 'signature'],
  properties: {
    did: { type: 'string', maxLength: 128, pattern: '^did:key:z[1-9A-HJ-NP-Za-km-z]+$' },
    peerId: { type: 'string', maxLength: 128, pattern: '^[1-9A-HJ-NP-Za-km-z]+$' },
    name: { type: 'string', minLength: 1, maxLength: HEARTBEAT_LIMITS.nameMaxLength, pattern: PRINTABLE },
    multiaddrs: {
      type: 'array',
      maxItems: HEARTBEAT_LIMITS.maxMultiaddrs,
      items: { type: 'string', minLength: 1, maxLength: HEARTBEAT_LIMITS.multiaddrMaxLength, pattern: '^/' },
    },
    status: { type: 'string', enum: HEARTBEAT_STATUSES },
    members: count,
    bots: count,
    rooms: count,
    version: {
      type: 'string',
      minLength: 1,
      maxLength: HEARTBEAT_LIMITS.versionMaxLength,
      pattern: PRINTABLE,
    },
    protocolVersions: {
      type: 'array',
      maxItems: HEARTBEAT_LIMITS.maxProtocolVersions,
      items: {
        type: 'string',
        minLength: 1,
        maxLength: HEARTBEAT_LIMITS.protocolVersionMaxLength,
        pattern: PRINTABLE,
      },
    },
    seq: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    ts: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    rotations: { ...rotationChainSchema, minItems: 1 },
    pow: { type: 'string', minLength: 1, maxLength: POW_NONCE_MAX_LENGTH, pattern: '^[A-Za-z0-9_-]+$' },
    ...meshProfileProperties, // reachable by URL (SPEC §10)
    // 64 signature bytes in unpadded base64url
    signature: { type: 'string', pattern: '^[A-Za-z0-9_-]{86}$' },
  },
} as const

const validateShape = lazyValidator<Heartbeat>(heartbeatSchema)

/** Signs `content` with the mesh key, which must be the key of `content.did`. */
export function signHeartbeat(key: Ed25519KeyPair, content: HeartbeatContent): Heartbeat {
  if (content.did !== key.did) throw new BadRequestError('a heartbeat is signed by the key of its own did')
  const wire = wireContent(content)
  return { ...wire, signature: signCanonical(key, wire) }
}

export interface VerifyHeartbeatOptions {
  /** The receiver's clock in ms; default `Date.now()`. */
  now?: number
  /** Largest accepted |ts − now|; default 60 s. */
  maxClockSkewMs?: number
}

/**
 * Every check on a heartbeat that needs no state, in this order, each with its code:
 * shape and bounds (MESH_BAD_REQUEST); signature by `did`'s key (MESH_SIGNATURE_MISMATCH
 * — this also covers a heartbeat claiming another mesh's did); `peerId` is `did`'s key
 * (MESH_SIGNATURE_MISMATCH); multiaddrs parse and name no other peer (MESH_BAD_REQUEST);
 * `ts` within the skew (MESH_CLOCK_SKEW). Replay (`seq`) needs the receiver's state and
 * is the registry's check. Returns the heartbeat, typed.
 */
export function verifyHeartbeat(value: unknown, options: VerifyHeartbeatOptions = {}): Heartbeat {
  if (!validateShape(value)) {
    const first = validateShape.errors?.[0]
    throw new BadRequestError(
      `invalid heartbeat: ${first?.instancePath || '/'} ${first?.message ?? ''}`.trim(),
      {
        validation: first,
      },
    )
  }
  const { signature, ...content } = value
  if (!verifyCanonical(value.did, content, signature)) {
    throw new SignatureMismatchError('heartbeat signature does not verify against its did', {
      did: value.did,
    })
  }
  if (peerIdFromDid(value.did).toString() !== value.peerId) {
    throw new SignatureMismatchError('heartbeat peerId is not the key of its did', {
      did: value.did,
      peerId: value.peerId,
    })
  }
  for (const address of value.multiaddrs) checkMultiaddr(address, value.peerId)
  const now = options.now ?? Date.now()
  if (value.rotations !== undefined) {
    const chain = verifyRotationChain(value.rotations, { now })
    if (chain.keys.at(-1) !== value.did) {
      throw new SignatureMismatchError('heartbeat rotation chain does not end at its did', { did: value.did })
    }
  }
  const skew = value.ts - now
  if (Math.abs(skew) > (options.maxClockSkewMs ?? HEARTBEAT_MAX_CLOCK_SKEW_MS)) {
    throw new ClockSkewError('heartbeat timestamp is too far from this registry’s clock', {
      ts: value.ts,
      now,
      skew,
    })
  }
  return value
}

function checkMultiaddr(address: string, peerId: string): void {
  let components: Array<{ name: string; value?: string }>
  try {
    components = multiaddr(address).getComponents()
  } catch {
    throw new BadRequestError('heartbeat multiaddr does not parse', { multiaddr: address })
  }
  // A listed address that ends in someone else's /p2p/ would send browsers to another node.
  if (components.some((c) => c.name === 'p2p' && c.value !== peerId)) {
    throw new BadRequestError('heartbeat multiaddr names another peer', { multiaddr: address })
  }
}

// Exactly the wire fields, so that extra properties on a caller's object never reach
// the signature or the wire (a receiver refuses unknown fields).
function wireContent(c: HeartbeatContent): HeartbeatContent {
  return {
    did: c.did,
    peerId: c.peerId,
    name: c.name,
    multiaddrs: [...c.multiaddrs],
    status: c.status,
    members: c.members,
    bots: c.bots,
    rooms: c.rooms,
    version: c.version,
    protocolVersions: [...c.protocolVersions],
    seq: c.seq,
    ts: c.ts,
    ...(c.rotations !== undefined && c.rotations.length > 0 ? { rotations: [...c.rotations] } : {}),
    ...(c.pow !== undefined ? { pow: c.pow } : {}),
    ...pickMeshProfile(c), // reachable by URL (SPEC §10)
  }
}
