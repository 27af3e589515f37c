import { createHash } from 'node:crypto'
import { publicKeyFromDid, type RotationRecord } from '../identity/index.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'

/**
 * What this mesh knows about each peer mesh it exchanged federation messages with,
 * in the `peers` sublevel (keys carry a version segment):
 *
 * ```
 * peer/1/<identity did>  → PeerRecord
 * key/1/<key did>        → identity did
 * ```
 *
 * A peer is filed under its identity did (the did it first contacted us with); `keys`
 * lists every mesh key known to be its own, oldest first, the last being its current
 * key: a key rotation (a verified chain, identity/rotation.ts) appends the new key, and
 * the connections filed under the identity keep working. Envelopes are accepted from
 * the current key only; the older keys stay indexed so that they are recognised and
 * refused as retired.
 */
export interface PeerKey {
  did: string
  /** ISO time the key became known. */
  addedAt: string
}

export interface PeerError {
  /** A delivery error kind (`connect-refused`, `timeout`, `remote-refused`…) or `inbound`. */
  kind: string
  code: string
  message: string
  at: string
}

export interface PeerRecord {
  did: string
  keys: PeerKey[]
  name: string | null
  /** The human architect the peer declared; pinned at first sight. */
  architectDid: string | null
  multiaddrs: string[]
  protocolVersions: string[]
  firstSeen: string
  /** Last time a message from the peer verified, or one of ours was delivered. */
  lastSeen: string | null
  lastError: PeerError | null
  /** Set while the peer cannot be reached (drives the `degraded` status). */
  unreachableSince: string | null
  /** Highest agreement version ever agreed with this peer. */
  agreementVersion: number
  /** Hourly buckets (hour since epoch → count) of federation messages, last 24 h. */
  sent: Record<string, number>
  received: Record<string, number>
  /** The peer's rotation chain as last applied (the evidence for `keys`); absent before any rotation. */
  rotations?: RotationRecord[]
  /** The peer's HTTP base, from the manifest it was reached by (reachable by URL, SPEC §10). */
  http?: string
}

/** The key a peer signs with today. */
export function currentKeyOf(peer: PeerRecord): string {
  return peer.keys.at(-1)?.did ?? peer.did
}

const PEER_PREFIX = 'peer/1/'
const KEY_PREFIX = 'key/1/'
const HOUR = 3600_000

export function newPeerRecord(did: string, now: number): PeerRecord {
  const at = new Date(now).toISOString()
  return {
    did,
    keys: [{ did, addedAt: at }],
    name: null,
    architectDid: null,
    multiaddrs: [],
    protocolVersions: [],
    firstSeen: at,
    lastSeen: null,
    lastError: null,
    unreachableSince: null,
    agreementVersion: 0,
    sent: {},
    received: {},
  }
}

/** Adds one to the current hour's bucket and drops buckets older than 24 h. */
export function countTraffic(buckets: Record<string, number>, now: number): Record<string, number> {
  const hour = Math.floor(now / HOUR)
  const out: Record<string, number> = {}
  for (const [h, n] of Object.entries(buckets)) if (Number(h) > hour - 24) out[h] = n
  out[hour] = (out[hour] ?? 0) + 1
  return out
}

/** Messages in the last 24 h. */
export function traffic24h(buckets: Record<string, number>, now: number): number {
  const hour = Math.floor(now / HOUR)
  let total = 0
  for (const [h, n] of Object.entries(buckets)) if (Number(h) > hour - 24) total += n
  return total
}

/** `SHA256:` and the unpadded base64 of the sha256 of the raw public key, as ssh shows keys. */
export function keyFingerprint(did: string): string {
  return `SHA256:${createHash('sha256').update(publicKeyFromDid(did)).digest('base64').replace(/=+$/, '')}`
}

/** The `peers` sublevel. Writes are the caller's batch operations (one writer: the connection service). */
export class PeerBook {
  readonly #sub: Sublevel<unknown>

  constructor(store: MeshStore) {
    this.#sub = store.sublevel('peers')
  }

  async get(did: string): Promise<PeerRecord | undefined> {
    return (await this.#sub.get(PEER_PREFIX + did)) as PeerRecord | undefined
  }

  /** The identity a mesh key belongs to (the key's own did for a key seen first). */
  async identityOf(keyDid: string): Promise<string | undefined> {
    return (await this.#sub.get(KEY_PREFIX + keyDid)) as string | undefined
  }

  async list(): Promise<PeerRecord[]> {
    const out: PeerRecord[] = []
    for await (const value of this.#sub.values({ gte: PEER_PREFIX, lt: `${PEER_PREFIX}~` })) {
      out.push(value as PeerRecord)
    }
    return out
  }

  /** The operations that store `record` (and index its keys). */
  put(record: PeerRecord): StoreOperation[] {
    return [
      { type: 'put', sublevel: this.#sub, key: PEER_PREFIX + record.did, value: record },
      ...record.keys.map((k) => ({
        type: 'put',
        sublevel: this.#sub,
        key: KEY_PREFIX + k.did,
        value: record.did,
      })),
    ] as StoreOperation[]
  }
}
