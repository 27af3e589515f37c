import type { AbortOptions } from '@libp2p/interface'
import type { Counter, Gauge, Registry as MetricsRegistry } from 'prom-client'
// reachable by URL (SPEC §10)
import { pickMeshProfile } from '../api/schemas/mesh-profile.ts'
import {
  ForbiddenError,
  isMeshError,
  type MeshErrorCode,
  RateLimitedError,
  ReplayError,
  SignatureMismatchError,
  UnavailableError,
} from '../errors.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { MeshStore, Sublevel } from '../store/index.ts'
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_MAX_CLOCK_SKEW_MS,
  type Heartbeat,
  type HeartbeatStatus,
  verifyHeartbeat,
} from './heartbeat.ts'
import {
  type MeshListQuery,
  type MeshPage,
  type MeshStatus,
  type PublicMesh,
  pageMeshes,
} from './mesh-list.ts'
import { outcomeCounter, singleGauge } from './metrics.ts'
import { checkPow, DEFAULT_POW_BITS, MAX_POW_BITS } from './pow.ts'

export interface RegistryServiceInit {
  /** The node's store; the registry keeps its list in the 'registry' sublevel. */
  store: MeshStore
  logger?: Logger
  /** Counts heartbeats by outcome (`mesh_registry_heartbeats_total`) and meshes listed, when given. */
  metrics?: MetricsRegistry
  /** Interval the meshes are expected to beat at; statuses are computed from it. Default 30 000 ms. */
  heartbeatIntervalMs?: number
  /** Largest accepted |ts − now| of a heartbeat; default 60 000 ms (SPEC §3). */
  maxClockSkewMs?: number
  /**
   * Most meshes kept; default 10 000. When full, a new mesh takes the place of the
   * least proven one (see `#evictable`): an unestablished mesh (offline ones first,
   * then the least uptime, then the newest), else the established mesh silent longest
   * if it is offline. Only a registry full of established meshes that are all still
   * online or idle refuses a newcomer (MESH_UNAVAILABLE).
   */
  maxMeshes?: number
  /**
   * Uptime (time covered by heartbeats, see `StoredMesh.uptimeMs`) after which a mesh is
   * established: no newcomer evicts it while it is online or idle; default 10 × the
   * heartbeat interval (5 min).
   */
  establishedAfterMs?: number
  /**
   * Admission cost of a did the registry does not know: leading zero bits of its stamp
   * (pow.ts, the heartbeat's `pow`); 0 turns it off; at most 32; default 20.
   */
  powBits?: number
  /**
   * Per-mesh token bucket, charged only for heartbeats that would be accepted (signed by
   * the did, seq above the last), so nobody but the key holder can spend it; one more is
   * MESH_RATE_LIMITED. Default burst 10, one token back every half heartbeat interval.
   */
  didRate?: { burst?: number; refillMs?: number }
  /**
   * New meshes admitted per source address (the `source` a heartbeat is given with): a
   * token bucket charged only when a did with a good stamp is added; one more is
   * MESH_RATE_LIMITED with `details.reason 'new-mesh-limit'`. Known meshes, and meshes
   * this registry evicted to make room, are not charged. Default burst 8, one back every 10 heartbeat intervals (5 min); at most
   * `maxSources` addresses are remembered (default 10 000; the least recent is forgotten).
   */
  newPerSource?: { burst?: number; refillMs?: number; maxSources?: number }
  /** The clock, in ms since the epoch; default `Date.now`. */
  now?: () => number
}

/** Options of one heartbeat. */
export interface HeartbeatOptions extends AbortOptions {
  /** Who sent it (normalized address), for the per-source admission budget; none = not charged. */
  source?: string
}

/** What the registry answers to an accepted heartbeat. */
export interface HeartbeatReceipt {
  /** The mesh's status as the registry now lists it. */
  status: MeshStatus
}

interface Bucket {
  tokens: number
  at: number
}

/** What the registry keeps per mesh: the last accepted heartbeat, still signed, and when it came. */
interface StoredMesh {
  heartbeat: Heartbeat
  receivedAt: number
  /** When the registry first accepted this mesh (kept across a key rotation); absent in entries written before it was kept. */
  firstSeen?: number
  /**
   * Time covered by heartbeats: each accepted heartbeat adds the gap since the previous
   * one, at most 1.5 intervals and nothing after an 'offline' one. Beating faster does
   * not make it grow faster than the clock.
   */
  uptimeMs?: number
}

// Keys in the 'registry' sublevel, which a node serving a registry shares with its
// own heartbeat client; the version segment lets the layout change later.
const MESH_KEY_PREFIX = 'mesh/v1/'
const meshKey = (did: string): string => `${MESH_KEY_PREFIX}${did}`
// A key a mesh rotated away from → the key that replaced it (`retired/v1/<did>`).
const RETIRED_KEY_PREFIX = 'retired/v1/'
const retiredKey = (did: string): string => `${RETIRED_KEY_PREFIX}${did}`

/**
 * A mesh's status at `ageMs` after its last heartbeat. A heartbeat counts as missed
 * half an interval after it was due: up to 1.5 intervals the mesh is what it reported
 * (online or idle); with one or two heartbeats missed it is idle; with three missed
 * (after 3.5 intervals) it is offline. A clean shutdown's 'offline' holds at once.
 */
export function computeMeshStatus(reported: HeartbeatStatus, ageMs: number, intervalMs: number): MeshStatus {
  if (reported === 'offline') return 'offline'
  if (ageMs <= 1.5 * intervalMs) return reported
  if (ageMs <= 3.5 * intervalMs) return 'idle'
  return 'offline'
}

/**
 * The platform registry: verifies signed heartbeats and keeps the latest per mesh.
 * The whole list (at most `maxMeshes`) is held in memory for reads and written
 * through to the store, so a restarted registry keeps it; writes are serialized so
 * that the seq check and the write are one step.
 */
export class RegistryService {
  readonly #meshes = new Map<string, StoredMesh>()
  readonly #retired = new Map<string, string>()
  readonly #sublevel: Sublevel<StoredMesh>
  readonly #log: Logger
  readonly #now: () => number
  readonly #intervalMs: number
  readonly #maxClockSkewMs: number
  readonly #maxMeshes: number
  readonly #establishedAfterMs: number
  readonly #powBits: number
  readonly #didBurst: number
  readonly #didRefillMs: number
  // Per-did token buckets; only dids listed have one, so the map is bounded by maxMeshes.
  readonly #buckets = new Map<string, Bucket>()
  // Per-source admission buckets, least recently charged first (re-inserted when charged).
  readonly #admissions = new Map<string, Bucket>()
  // Dids evicted to make room (least recent first, at most maxMeshes): coming back costs
  // their stamp again but no admission, so evicting an honest newcomer over and over
  // cannot drain the budget of its address.
  readonly #evicted = new Set<string>()
  readonly #newBurst: number
  readonly #newRefillMs: number
  readonly #maxSources: number
  readonly #heartbeats?: Counter<'outcome'>
  readonly #listed?: Gauge
  #writes: Promise<unknown> = Promise.resolve()
  #running = false

  constructor(init: RegistryServiceInit) {
    this.#sublevel = init.store.sublevel<StoredMesh>('registry')
    this.#log = (init.logger ?? silentLogger()).child({ area: 'registry' })
    this.#now = init.now ?? Date.now
    this.#intervalMs = init.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS
    this.#maxClockSkewMs = init.maxClockSkewMs ?? HEARTBEAT_MAX_CLOCK_SKEW_MS
    this.#maxMeshes = init.maxMeshes ?? 10_000
    this.#establishedAfterMs = init.establishedAfterMs ?? 10 * this.#intervalMs
    this.#powBits = init.powBits ?? DEFAULT_POW_BITS
    if (!Number.isInteger(this.#powBits) || this.#powBits < 0 || this.#powBits > MAX_POW_BITS) {
      throw new RangeError(`powBits is an integer from 0 to ${MAX_POW_BITS}`)
    }
    this.#didBurst = Math.max(1, init.didRate?.burst ?? 10)
    this.#didRefillMs = init.didRate?.refillMs ?? this.#intervalMs / 2
    this.#newBurst = Math.max(1, init.newPerSource?.burst ?? 8)
    this.#newRefillMs = init.newPerSource?.refillMs ?? 10 * this.#intervalMs
    this.#maxSources = Math.max(1, init.newPerSource?.maxSources ?? 10_000)
    if (init.metrics !== undefined) {
      this.#heartbeats = outcomeCounter(
        init.metrics,
        'mesh_registry_heartbeats_total',
        'Heartbeats received by the registry, by outcome (accepted or the refusal code)',
      )
      this.#listed = singleGauge(init.metrics, 'mesh_registry_meshes', 'Meshes listed by the registry')
    }
  }

  /** Loads the persisted list. */
  async start(options: AbortOptions = {}): Promise<void> {
    if (this.#running) return
    this.#meshes.clear()
    for await (const [, stored] of this.#sublevel.iterator({
      gte: MESH_KEY_PREFIX,
      lt: `${MESH_KEY_PREFIX}\uffff`,
    })) {
      options.signal?.throwIfAborted()
      this.#meshes.set(stored.heartbeat.did, stored)
    }
    this.#retired.clear()
    for await (const [key, next] of this.#sublevel.iterator({
      gte: RETIRED_KEY_PREFIX,
      lt: `${RETIRED_KEY_PREFIX}\uffff`,
    })) {
      this.#retired.set(key.slice(RETIRED_KEY_PREFIX.length), next as unknown as string)
    }
    this.#running = true
    this.#listed?.set(this.#meshes.size)
    this.#log.info({ event: 'registry.started', meshes: this.#meshes.size }, 'registry started')
  }

  /** The heartbeat interval statuses are computed from (the routes size their per-source window by it). */
  get heartbeatIntervalMs(): number {
    return this.#intervalMs
  }

  /** Waits for writes under way; the store stays open (its owner closes it). */
  async stop(_options: AbortOptions = {}): Promise<void> {
    if (!this.#running) return
    this.#running = false
    await this.#writes
    this.#meshes.clear()
    this.#buckets.clear()
    this.#admissions.clear()
    this.#evicted.clear()
    this.#log.info({ event: 'registry.stopped' }, 'registry stopped')
  }

  /**
   * Verifies and records a heartbeat. Refusals, checked in this order, store nothing:
   * MESH_BAD_REQUEST (malformed), MESH_SIGNATURE_MISMATCH (not signed by `did`, or
   * `peerId` is not `did`'s key), MESH_CLOCK_SKEW (|ts − now| > 60 s), MESH_REPLAY
   * (seq not above the last accepted), MESH_FORBIDDEN with `details.reason
   * 'pow-required'` and `details.powBits` (a did not listed yet without a good `pow`),
   * MESH_RATE_LIMITED (the did's bucket is empty, or for a new did its source's
   * admissions, `details.reason 'new-mesh-limit'`; `details.retryAfterMs`),
   * MESH_UNAVAILABLE (not started, or full of established live meshes).
   *
   * Key rotation: a heartbeat carrying a rotation chain (verified with its signature)
   * moves the mesh's entry from any older key of the chain to its did, at most once per
   * key; a key a chain retired is refused from then on (MESH_SIGNATURE_MISMATCH), so a
   * stolen old key cannot bring the old entry back. Without a chain a new key is a new mesh.
   */
  async heartbeat(value: unknown, options: HeartbeatOptions = {}): Promise<HeartbeatReceipt> {
    try {
      if (!this.#running) throw new UnavailableError('the registry is not running')
      const heartbeat = verifyHeartbeat(value, { now: this.#now(), maxClockSkewMs: this.#maxClockSkewMs })
      const receipt = await this.#serialized(() => this.#record(heartbeat, options))
      this.#heartbeats?.inc({ outcome: 'accepted' })
      return receipt
    } catch (err) {
      const did = (value as { did?: unknown } | null)?.did
      const context = { did: typeof did === 'string' ? did.slice(0, 128) : undefined }
      if (!isMeshError(err)) {
        this.recordRefusal('MESH_INTERNAL')
        this.#log.error({ event: 'registry.heartbeat.error', err, ...context }, 'heartbeat failed')
        throw err
      }
      // Anyone can post; refusals are counted, and logged at debug so a flood cannot fill the log.
      this.recordRefusal(err.code)
      this.#log.debug(
        { event: 'registry.heartbeat.refused', code: err.code, ...context },
        'heartbeat refused',
      )
      throw err
    }
  }

  /** One page of the list; MESH_BAD_REQUEST for a bad query. */
  async list(query: MeshListQuery = {}, options: AbortOptions = {}): Promise<MeshPage> {
    return pageMeshes(await this.all(options), query)
  }

  /** Every mesh listed, unordered, with its status as of now: a `PublicMeshSource` for the list route. */
  async all(_options: AbortOptions = {}): Promise<PublicMesh[]> {
    const now = this.#now()
    return [...this.#meshes.values()].map((stored) => this.#toPublic(stored, now))
  }

  /** Counts a heartbeat refused before it reached `heartbeat()` (bad JSON, too large, schema). */
  recordRefusal(code: MeshErrorCode): void {
    this.#heartbeats?.inc({ outcome: code })
  }

  // Runs `write` after every write before it. The chain keeps no rejection of its own:
  // each caller gets its write's error through the promise returned here.
  #serialized<T>(write: () => Promise<T>): Promise<T> {
    const run = this.#writes.then(write)
    this.#writes = run.catch(() => undefined)
    return run
  }

  async #record(heartbeat: Heartbeat, options: HeartbeatOptions): Promise<HeartbeatReceipt> {
    options.signal?.throwIfAborted()
    if (!this.#running) throw new UnavailableError('the registry is not running')
    const successor = this.#retired.get(heartbeat.did)
    if (successor !== undefined) {
      throw new SignatureMismatchError('this mesh key was rotated away; heartbeat with the current key', {
        did: heartbeat.did,
        reason: 'retired-key',
      })
    }
    // Older keys of the chain: their entries (at most one, normally) make way for this one.
    const olderKeys = (heartbeat.rotations ?? []).map((r) => r.previous)
    const moved = olderKeys.filter((did) => this.#meshes.has(did))
    const prior =
      this.#meshes.get(heartbeat.did) ??
      moved
        .map((did) => this.#meshes.get(did) as StoredMesh)
        .sort((a, b) => b.heartbeat.seq - a.heartbeat.seq)[0]
    if (prior !== undefined && heartbeat.seq <= prior.heartbeat.seq) {
      throw new ReplayError('heartbeat seq is not above the last one accepted', {
        did: heartbeat.did,
        seq: heartbeat.seq,
        lastSeq: prior.heartbeat.seq,
      })
    }
    // A new did pays its admission; one moved here by a rotation chain paid under its old key.
    if (prior === undefined && !checkPow(heartbeat.did, heartbeat.pow, this.#powBits)) {
      throw new ForbiddenError('a mesh new to this registry needs an admission stamp (pow)', {
        did: heartbeat.did,
        reason: 'pow-required',
        powBits: this.#powBits,
      })
    }
    const now = this.#now()
    const bucket = this.#take(prior?.heartbeat.did, now)
    const { source } = options
    const admission =
      prior === undefined && source !== undefined && !this.#evicted.has(heartbeat.did)
        ? this.#admit(source, heartbeat.did, now)
        : undefined
    let evicted: string | undefined
    if (prior === undefined && this.#meshes.size >= this.#maxMeshes) {
      evicted = this.#evictable(now)
      if (evicted === undefined)
        throw new UnavailableError('the registry is full', { maxMeshes: this.#maxMeshes })
    }
    const stored: StoredMesh = {
      heartbeat,
      receivedAt: now,
      firstSeen: prior?.firstSeen ?? prior?.receivedAt ?? now,
      uptimeMs: prior === undefined ? 0 : (prior.uptimeMs ?? 0) + this.#covered(prior, now),
    }
    const newlyRetired = olderKeys.filter((did) => !this.#retired.has(did))
    await this.#sublevel.batch([
      ...(evicted === undefined ? [] : [{ type: 'del' as const, key: meshKey(evicted) }]),
      ...moved.map((did) => ({ type: 'del' as const, key: meshKey(did) })),
      ...newlyRetired.map((did) => ({
        type: 'put' as const,
        key: retiredKey(did),
        value: heartbeat.did as unknown as StoredMesh,
      })),
      { type: 'put', key: meshKey(heartbeat.did), value: stored },
    ])
    if (evicted !== undefined) {
      this.#meshes.delete(evicted)
      this.#buckets.delete(evicted)
      this.#evicted.add(evicted)
      if (this.#evicted.size > this.#maxMeshes) {
        this.#evicted.delete(this.#evicted.values().next().value as string)
      }
    }
    this.#evicted.delete(heartbeat.did)
    for (const did of moved) {
      this.#meshes.delete(did)
      this.#buckets.delete(did)
    }
    this.#buckets.set(heartbeat.did, bucket)
    if (admission !== undefined && source !== undefined) {
      this.#admissions.delete(source)
      this.#admissions.set(source, admission)
      if (this.#admissions.size > this.#maxSources) {
        this.#admissions.delete(this.#admissions.keys().next().value as string)
      }
    }
    for (const did of newlyRetired) this.#retired.set(did, heartbeat.did)
    this.#meshes.set(heartbeat.did, stored)
    if (evicted !== undefined) {
      this.#log.info(
        { event: 'registry.mesh.evicted', did: evicted, for: heartbeat.did },
        'full registry dropped its least proven mesh',
      )
    }
    if (moved.length > 0) {
      this.#log.info(
        { event: 'registry.mesh.key_rotated', did: heartbeat.did, from: moved },
        'mesh moved to its new key',
      )
    }
    this.#listed?.set(this.#meshes.size)
    const status = this.#statusOf(stored, now)
    if (prior === undefined) {
      this.#log.info(
        { event: 'registry.mesh.added', did: heartbeat.did, evicted },
        'mesh added to the registry',
      )
    }
    this.#log.debug(
      { event: 'registry.heartbeat.accepted', did: heartbeat.did, seq: heartbeat.seq, status },
      'heartbeat accepted',
    )
    return { status }
  }

  /**
   * Takes one token from the bucket of `did` (undefined: a mesh new here, whose bucket
   * starts full) and returns the bucket as it will be once the heartbeat is stored.
   */
  #take(did: string | undefined, now: number): Bucket {
    const held = did === undefined ? undefined : this.#buckets.get(did)
    return takeToken(held, this.#didBurst, this.#didRefillMs, now, (retryAfterMs) => {
      return new RateLimitedError('this mesh heartbeats too often', { did, retryAfterMs })
    })
  }

  /** Takes one admission from `source`'s bucket, as `#take` does for a did. */
  #admit(source: string, did: string, now: number): Bucket {
    const held = this.#admissions.get(source)
    return takeToken(held, this.#newBurst, this.#newRefillMs, now, (retryAfterMs) => {
      return new RateLimitedError('too many new meshes from this address', {
        did,
        reason: 'new-mesh-limit',
        retryAfterMs,
      })
    })
  }

  /** Uptime the heartbeat arriving at `now` adds to `prior`'s (see `StoredMesh.uptimeMs`). */
  #covered(prior: StoredMesh, now: number): number {
    if (prior.heartbeat.status === 'offline') return 0
    return Math.min(Math.max(0, now - prior.receivedAt), 1.5 * this.#intervalMs)
  }

  /**
   * The mesh a full registry drops for a newcomer: the least proven one. Unestablished
   * meshes go first — offline before live, then the least uptime, then the newest — so a
   * flood of fresh dids displaces itself; then the established mesh silent longest, if
   * offline. An established mesh that is online or idle is never evicted.
   */
  #evictable(now: number): string | undefined {
    let victim: StoredMesh | undefined
    let victimRank: number[] | undefined
    for (const stored of this.#meshes.values()) {
      const offline = this.#statusOf(stored, now) === 'offline'
      const uptime = stored.uptimeMs ?? 0
      const established = uptime >= this.#establishedAfterMs
      if (established && !offline) continue
      const rank = established
        ? [1, stored.receivedAt]
        : [0, offline ? 0 : 1, uptime, -(stored.firstSeen ?? stored.receivedAt)]
      if (victimRank === undefined || lexicographicallyBefore(rank, victimRank)) {
        victim = stored
        victimRank = rank
      }
    }
    return victim?.heartbeat.did
  }

  #statusOf(stored: StoredMesh, now: number): MeshStatus {
    return computeMeshStatus(stored.heartbeat.status, now - stored.receivedAt, this.#intervalMs)
  }

  #toPublic(stored: StoredMesh, now: number): PublicMesh {
    const hb = stored.heartbeat
    return {
      did: hb.did,
      name: hb.name,
      peerId: hb.peerId,
      multiaddrs: [...hb.multiaddrs],
      status: this.#statusOf(stored, now),
      members: hb.members,
      bots: hb.bots,
      rooms: hb.rooms,
      version: hb.version,
      protocolVersions: [...hb.protocolVersions],
      lastHeartbeat: new Date(stored.receivedAt).toISOString(),
      firstSeen: new Date(stored.firstSeen ?? stored.receivedAt).toISOString(),
      ...pickMeshProfile(hb), // reachable by URL (SPEC §10)
    }
  }
}

function lexicographicallyBefore(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return (a[i] as number) < (b[i] as number)
  }
  return a.length < b.length
}

/**
 * Takes one token from `held` (undefined: a bucket that starts full with `burst`), which
 * refills one token per `refillMs`; returns the bucket as it will be once the token is
 * spent, or throws `refuse(retryAfterMs)` when no whole token is left.
 */
function takeToken(
  held: Bucket | undefined,
  burst: number,
  refillMs: number,
  now: number,
  refuse: (retryAfterMs: number) => Error,
): Bucket {
  const tokens =
    held === undefined ? burst : Math.min(burst, held.tokens + Math.max(0, now - held.at) / refillMs)
  if (tokens < 1) throw refuse(Math.ceil((1 - tokens) * refillMs))
  return { tokens: tokens - 1, at: now }
}
