import { roomResourceOf } from '../auth/authority/index.ts'
import { BadRequestError, ForbiddenError, MeshError, SignatureMismatchError } from '../errors.ts'
import {
  type Ed25519KeyPair,
  isDidKey,
  type RotationRecord,
  signCanonical,
  type VerifiedChain,
  verifyCanonical,
  verifyRotationChain,
} from '../identity/index.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'
import { ROOM_ID_RE, ROOM_LIMITS } from './room-entries.ts'
import { ROOM_SYNC_LIMITS } from './sync-protocol.ts'

/**
 * Federation is per room: a room travels on the link to a peer mesh only when it is
 * shared with that peer, either way.
 *
 * A share is stored on both sides (sublevel `rooms`, key `~share/1/<room>/<peer>`,
 * after every room id): `out` on the mesh whose human shared it, `in` on the mesh
 * it was shared with. The sharing side re-sends the signed share every time the link
 * opens, so a share decided while the peer was offline (or before a crash) still
 * arrives; the receiver applies it once (it is idempotent).
 *
 * The signed share (the `share` frame of `/mesh/rooms/1.0.0`):
 *
 * ```
 * {v: 1, room, homeMesh, name, topic, from, to, act, credentials?, decidedAt, join?, chains?, sig}
 * ```
 *
 * `from` is the sharing mesh's current key (it must be the stream's authenticated
 * peer), `to` the receiver as the act names it (its identity or one of its keys),
 * `homeMesh` the room's home mesh identity, `act` the human-signed UCAN chain that
 * decided it (encoded, see auth/authority/token.ts): an invocation of `room/share`
 * addressed to a key of the sharing mesh (`aud`), with proofs back to that key's root
 * delegation — on `<aud>/rooms/<room>` with `nb.peer = to` for a share, on `<aud>`
 * with `nb.peer = join` for a federated DM. `credentials` (at most 4): the sharing
 * mesh's membership credentials of the humans in the chain, so that the receiver
 * can check that a human signed (SPEC §4). `decidedAt` is when the share was carried
 * out (the chain's time bounds are judged then), `join` for a DM: the receiver's
 * principal the room is with. `chains` (optional, at most 2): the rotation chains of
 * the sharing mesh (ending at `from`) and of the home mesh, when they rotated, so that
 * the receiver can tell their identities and verify seals by their later keys. `sig`
 * is `from`'s Ed25519 signature over the RFC 8785 canonical JSON of every other field.
 */
export interface ShareRecord {
  room: string
  /** The other mesh. */
  peer: string
  /** `out`: this mesh shared the room with `peer`; `in`: `peer` shared it with this mesh. */
  direction: 'out' | 'in'
  homeMesh: string
  name: string
  topic: string
  /** The encoded UCAN chain that decided the share. */
  act: string
  /** The sharing mesh's credentials of the humans in the chain (forwarded with `act`). */
  credentials?: string[]
  /** Who invoked the act (for `in`: the peer mesh). */
  by: string
  decidedAt: number
  /** For `out`: the peer as the act names it, when not its identity (`peer`). */
  to?: string
  /** For `in`: the local principal who joins the room once it arrives (the architect, or a DM's principal). */
  join?: string
  /** For a federated DM: the principal the room is with. */
  dm?: string
  createdAt: string
  // room lifecycle (SPEC §9): the invitation's answer and the end of the share
  /** The receiver's answer: `pending` until a human (or `autoAcceptRooms`) answers; absent = accepted (shares stored before invitations). */
  status?: ShareStatus
  /** When and by whom (a local human, the peer mesh, or `policy`) the answer was given. */
  answeredAt?: string
  answeredBy?: string
  /** The share ended: the home mesh unshared it, or the receiver left the room; nothing of it crosses the link since. */
  endedAt?: string
  endedBy?: ShareEnd
}

// room lifecycle (SPEC §9)
export type ShareStatus = 'pending' | 'accepted' | 'declined'
export type ShareEnd = 'unshare' | 'leave'

/** Whether a share carries its room on the link: accepted (or from before invitations) and not ended. */
export function isLive(share: ShareRecord): boolean {
  return (share.status ?? 'accepted') === 'accepted' && share.endedAt === undefined
}

/** Whether a share still has something to say on the link: not declined, not ended. */
export function isOpen(share: ShareRecord): boolean {
  return share.status !== 'declined' && share.endedAt === undefined
}

export interface ShareFields {
  v: 1
  room: string
  homeMesh: string
  name: string
  topic: string
  from: string
  to: string
  act: string
  credentials?: string[]
  decidedAt: number
  join?: string
  chains?: RotationRecord[][]
}

export interface SignedShare extends ShareFields {
  sig: string
}

const PREFIX = '~share/1/'
const SKEW_MS = 60_000
const MAX_CREDENTIALS = 4

/**
 * What a `room/share` chain acts on, at the sharing mesh whose key is `meshKey`: the
 * room (`nb.peer` = the peer mesh) or, for a federated DM (`dm` given), the mesh
 * itself (`nb.peer` = the DM's principal; the room does not exist yet).
 */
export function shareResource(meshKey: string, room: string, dm?: string): string {
  return dm !== undefined ? meshKey : roomResourceOf(meshKey, room)
}

export function signShare(key: Ed25519KeyPair, fields: Omit<ShareFields, 'v' | 'from'>): SignedShare {
  const body: ShareFields = { v: 1, ...fields, from: key.did }
  return { ...body, sig: signCanonical(key, body) }
}

/** What `verifyShare` needs to know about the two meshes. */
export interface ShareCheck {
  /** The key the sender authenticated the stream with (its current key). */
  remote: string
  /** Every did known to be the sender's: its identity and keys (a carried chain adds to it). */
  remoteDids: readonly string[]
  /** This mesh's identity and every key it has held. */
  selfDids: readonly string[]
  room: string
  now: number
}

/**
 * Checks a share received from `remote` for this mesh: shape, sender, target,
 * signature and the rotation chains it carries. Returns the verified chains (for the
 * caller to learn) and `senderDids`, every did shown to be the sender's (its identity,
 * keys, and the keys its carried chain proves): the act's audience must be one of
 * them. The act itself — a human-signed UCAN chain — is the caller's to verify, with
 * the Authority, when it applies the share (its spend is written with the share).
 * Throws the MeshError to report.
 */
export function verifyShare(
  json: string,
  options: ShareCheck,
): { share: SignedShare; chains: VerifiedChain[]; senderDids: Set<string> } {
  if (json.length > ROOM_SYNC_LIMITS.maxShareBytes) throw new BadRequestError('share too large')
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    throw new BadRequestError('share is not JSON')
  }
  const s = value as SignedShare
  const keys = ['v', 'room', 'homeMesh', 'name', 'topic', 'from', 'to', 'act', 'decidedAt', 'sig']
  const optional = ['join', 'chains', 'credentials']
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    Object.keys(value).some((k) => !keys.includes(k) && !optional.includes(k)) ||
    s.v !== 1 ||
    typeof s.room !== 'string' ||
    !ROOM_ID_RE.test(s.room) ||
    !isDidKey(s.homeMesh) ||
    typeof s.name !== 'string' ||
    s.name.length < 1 ||
    s.name.length > ROOM_LIMITS.maxNameLength ||
    typeof s.topic !== 'string' ||
    s.topic.length > ROOM_LIMITS.maxTopicLength ||
    typeof s.from !== 'string' ||
    typeof s.to !== 'string' ||
    typeof s.act !== 'string' ||
    !Number.isSafeInteger(s.decidedAt) ||
    typeof s.sig !== 'string' ||
    (s.join !== undefined && !isDidKey(s.join)) ||
    (s.credentials !== undefined &&
      (!Array.isArray(s.credentials) ||
        s.credentials.length > MAX_CREDENTIALS ||
        s.credentials.some((c) => typeof c !== 'string'))) ||
    (s.chains !== undefined && (!Array.isArray(s.chains) || s.chains.length > 2))
  ) {
    throw new BadRequestError('malformed share')
  }
  if (s.room !== options.room) throw new BadRequestError('share names another room than its frame')
  if (s.from !== options.remote) throw new ForbiddenError('share from another mesh than the sender')
  if (!options.selfDids.includes(s.to)) throw new ForbiddenError('share addressed to another mesh')
  const { sig, ...fields } = s
  if (!verifyCanonical(s.from, fields, sig))
    throw new SignatureMismatchError('share signature does not verify')
  if (s.decidedAt > options.now + SKEW_MS)
    throw new MeshError('MESH_CLOCK_SKEW', 'share decided in the future')
  const chains = (s.chains ?? []).map((records) => verifyRotationChain(records, { now: options.now }))
  for (const chain of chains)
    if (chain.keys.at(-1) !== s.from && chain.identity !== s.homeMesh)
      throw new BadRequestError('a share carries only the sender’s and the home mesh’s key histories')
  const senderDids = new Set([...options.remoteDids, s.from])
  // The sender's own chain (ending at `from`) proves its older keys, e.g. the act's audience.
  for (const chain of chains) if (chain.keys.at(-1) === s.from) for (const k of chain.keys) senderDids.add(k)
  return { share: s, chains, senderDids }
}

/** The stored shares, cached in memory (every frame on a link asks). */
export class ShareBook {
  readonly #sub: Sublevel<ShareRecord>
  readonly #byRoom = new Map<string, Map<string, ShareRecord>>()

  constructor(store: MeshStore) {
    this.#sub = store.sublevel<ShareRecord>('rooms')
  }

  async load(): Promise<void> {
    this.#byRoom.clear()
    for await (const record of this.#sub.values({ gte: PREFIX, lt: `${PREFIX}~` })) this.#cache(record)
  }

  /** The live share of `room` with `peer` (accepted, not ended): the room crosses that link. */
  get(room: string, peer: string): ShareRecord | undefined {
    const r = this.#byRoom.get(room)?.get(peer)
    return r !== undefined && isLive(r) ? r : undefined
  }

  /** Peers the room is shared with live (either way). */
  peersOf(room: string): ShareRecord[] {
    return this.recordsOf(room).filter(isLive)
  }

  /** Rooms shared live with `peer` (either way). */
  roomsWith(peer: string): ShareRecord[] {
    return this.recordsWith(peer).filter(isLive)
  }

  /** Peers with a share that still has something to say (pending, accepted): links are kept to them. */
  peers(): Set<string> {
    const out = new Set<string>()
    for (const byPeer of this.#byRoom.values()) for (const [p, r] of byPeer) if (isOpen(r)) out.add(p)
    return out
  }

  // room lifecycle (SPEC §9): every record, whatever its state
  /** The share of `room` with `peer` in any state (pending, declined, ended). */
  record(room: string, peer: string): ShareRecord | undefined {
    return this.#byRoom.get(room)?.get(peer)
  }

  recordsOf(room: string): ShareRecord[] {
    return [...(this.#byRoom.get(room)?.values() ?? [])]
  }

  recordsWith(peer: string): ShareRecord[] {
    const out: ShareRecord[] = []
    for (const byPeer of this.#byRoom.values()) {
      const r = byPeer.get(peer)
      if (r !== undefined) out.push(r)
    }
    return out
  }

  all(): ShareRecord[] {
    const out: ShareRecord[] = []
    for (const byPeer of this.#byRoom.values()) out.push(...byPeer.values())
    return out
  }

  /** The operation that stores `record`; call `commit(record)` after the batch is written. */
  putOperation(record: ShareRecord): StoreOperation {
    return {
      type: 'put',
      sublevel: this.#sub,
      key: `${PREFIX}${record.room}/${record.peer}`,
      value: record,
    } as StoreOperation
  }

  commit(record: ShareRecord): void {
    this.#cache(record)
  }

  #cache(record: ShareRecord): void {
    let byPeer = this.#byRoom.get(record.room)
    if (byPeer === undefined) {
      byPeer = new Map()
      this.#byRoom.set(record.room, byPeer)
    }
    byPeer.set(record.peer, record)
  }
}
