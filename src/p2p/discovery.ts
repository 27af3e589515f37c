import type { AbortOptions, PeerId, Startable } from '@libp2p/interface'
import { Record as DhtRecord, type QueryEvent } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { type Datastore, Key } from 'interface-datastore'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { NotFoundError } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import { canonicalBytes, didFromPeerId } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import type { MeshStatus, PublicMesh } from '../registry/mesh-list.ts'
import type { MeshStore, Sublevel } from '../store/index.ts'
import { MESH_DIRECTORY_CID } from './constants.ts'
import type { MeshLibp2p } from './host.ts'
import {
  checkMeshRecord,
  compareMeshRecords,
  createMeshRecord,
  currentDidOf,
  dhtRecordKey,
  encodeMeshRecord,
  MESH_RECORD_MAX_MULTIADDRS,
  type MeshRecord,
  type MeshRecordContent,
  type MeshRecordKeys,
  meshRecordKey,
  parseMeshRecord,
  validateMeshRecord,
} from './mesh-record.ts'
import { NeighbourRecords } from './neighbour-records.ts'

export interface MeshDiscoveryComponents {
  libp2p: MeshLibp2p
  /** The mesh key; it signs the mesh record and must be the key of libp2p's PeerId. */
  key: Ed25519KeyPair
  /** Own seq and discovered meshes live in its `discovery` sublevel. */
  store: MeshStore
  logger: Logger
  /**
   * libp2p's datastore. When given, directory entries this node holds itself are read
   * from it: kad-dht's findProviders stops after k (20) local providers, which would
   * hide most of the directory from the very nodes that store it. When it also tells
   * of its writes (RecordGuardDatastore's `onPut`), a mesh that provides the directory
   * to this node is fetched at once, not at the next round.
   */
  datastore?: Datastore & { onPut?(listener: (key: Key) => void): () => void }
}

export interface MeshDiscoveryInit {
  /** The mesh's display name. */
  name: string
  /** Software version published in the record. */
  version: string
  /** Protocol ids this node speaks; default `[]`. */
  protocolVersions?: string[]
  /**
   * Live content for the record (typically the member, bot and room counts), read at
   * each round; it wins over name/version/protocolVersions above and the libp2p
   * multiaddrs, and loses to setContent(). Default: counts of zero.
   */
  content?: (options?: AbortOptions) => MeshContentUpdate | Promise<MeshContentUpdate>
  /**
   * Provide the directory CID, so that any mesh can enumerate this one; default true.
   * When false the record is still published (whoever knows the did finds it) but
   * the mesh is unlisted.
   */
  announce?: boolean
  /** Multiaddrs dialled on start and whenever the node has no connection; default `[]`. */
  bootstrap?: string[]
  /**
   * A registry whose public list is dialled on start and whenever the node is alone
   * (e.g. `http://127.0.0.1:7800`); default none. The node asks for the online meshes,
   * oldest first (`status=online&sort=age`), so that a flood of fresh entries comes last.
   */
  registryUrl?: string
  /** Meshes from the registry connected at most per join, and dials in flight; default 16 (enough to join the DHT). */
  maxRegistryDials?: number
  /**
   * Registry entries tried at most per join, oldest first: a dead entry is passed over
   * for the next until `maxRegistryDials` answered; default 64.
   */
  maxRegistryAttempts?: number
  /** One round (publish if due, provide if due, look up the directory) every this many ms; default 10 000. */
  intervalMs?: number
  /** The own record is re-signed with a new seq and ts this often even if unchanged; default 2 × intervalMs. */
  refreshMs?: number
  /** The directory CID is provided again this often; default 6 × intervalMs. */
  reprovideMs?: number
  /** A known mesh's record is fetched again at most this often; default refreshMs. */
  recheckMs?: number
  /** Records fetched per round at most (new meshes first); default 16. */
  maxFetchesPerRound?: number
  /** Parallel record fetches; default 4. */
  fetchConcurrency?: number
  /**
   * A discovered mesh whose newest record is older than this, and that is not
   * connected, is forgotten (dropped from the list; found again if it comes back);
   * default 7 days.
   */
  forgetAfterMs?: number
  /** Per dial; default 5 000. */
  dialTimeoutMs?: number
  /** Per registry request; default 5 000. */
  registryTimeoutMs?: number
  /**
   * After a key rotation: the mesh's identity and rotation chain, put in every record,
   * and the keys it retired, each of which keeps publishing a "moved" record (signed by
   * that old key, no addresses, the chain naming the current key) so that a lookup of
   * an old did finds the new one. Default: none (a mesh that never rotated).
   */
  keys?: () => Promise<{ record: MeshRecordKeys; retired: Ed25519KeyPair[] } | undefined>
}

export type { MeshStatus }

/** One discovered mesh: an item of `GET /api/meshes/public`, the same shape a registry lists. */
export type DiscoveredMesh = PublicMesh

export interface LookupOptions extends AbortOptions {
  /**
   * End the DHT query at the first valid record a peer returns — one the record
   * validator accepts (signed by the did it is filed under, not stamped in the future)
   * and, with `newerThan`, of a higher seq — and abort the requests still in flight.
   * Default false: kad-dht's `get` runs its query to the end, picks the best record and
   * corrects peers holding stale ones. Records are signed and seq-ordered, so a first
   * answer is never wrong, at worst older than one a later refresh picks up. The copy
   * this node holds itself only counts when the network has no valid answer. A `first`
   * lookup asks the connected neighbours closest to the key before it walks the DHT
   * (NeighbourRecords): over open connections that is one round trip.
   */
  first?: boolean
  /** With `first`: only a record with a seq above this ends the query early; default 0. */
  newerThan?: number
}

export interface LookupResult {
  record: MeshRecord
  /**
   * Length of the referral chain that led to the peer which answered with the chosen
   * record: 0 = held locally, 1 = a peer from our routing table, n = reached through
   * n - 1 PEER_RESPONSE referrals.
   */
  hops?: number
  /** Until the lookup returned: the end of the query, or with `first` the first valid record. */
  ms: number
  /** Until the chosen record first arrived. */
  firstMs?: number
  /** False when `first` ended the query before kad-dht's get finished. */
  complete: boolean
  /**
   * Who answered: `neighbours` when a connected DHT peer close to the key had it (the
   * first round of a `first` lookup, see NeighbourRecords), `dht` when kad-dht's walk did.
   */
  via: 'neighbours' | 'dht'
}

/** What the node puts in its record; setContent() overrides any field. */
export type MeshContentUpdate = Partial<MeshRecordContent>

interface SelfState {
  seq: number
  record?: MeshRecord
}

interface DiscoveryEntry {
  record: MeshRecord
  firstSeen: number
  updatedAt: number
}

const SELF_KEY = 'self/v1'
const MESH_PREFIX = 'mesh/v1/'
const MAX_REGISTRY_PAGES = 20
/**
 * How long a `first` lookup waits on its connected neighbours before walking the DHT.
 * They answer in one round trip; this only bounds peers that accept a stream and stall.
 */
const NEIGHBOUR_ROUND_MS = 500
const PROVIDER_PREFIX = `/dht/provider/${uint8ArrayToString(MESH_DIRECTORY_CID.multihash.bytes, 'base32')}/`

/**
 * Publishes this mesh in the DHT and finds the others.
 *
 * On start: dials bootstrap peers and meshes from the registry, publishes the signed
 * record under `/mesh/<did>` (seq persisted, so it only grows across restarts),
 * provides the directory CID and looks the directory up. Then every `intervalMs`: the
 * same round — republish when content changed or the record is due, re-join when
 * alone, and ingest every record with a seq higher than the one held.
 */
export class MeshDiscovery implements Startable {
  readonly #components: MeshDiscoveryComponents
  readonly #init: Required<
    Omit<MeshDiscoveryInit, 'registryUrl' | 'content' | 'name' | 'version' | 'protocolVersions' | 'keys'>
  > &
    Pick<MeshDiscoveryInit, 'registryUrl' | 'content' | 'keys'>
  readonly #log: Logger
  readonly #sublevel: Sublevel<SelfState | DiscoveryEntry>
  readonly #checkedAt = new Map<string, number>()
  #content: MeshRecordContent
  #overrides: MeshContentUpdate = {}
  #seq = 0
  #published: MeshRecord | undefined
  #moved: MeshRecord[] = []
  #publishReached = false
  #providedAt = 0
  #shutdown = new AbortController()
  #timer: ReturnType<typeof setTimeout> | undefined
  #round: Promise<void> | undefined
  #rerun = false
  #ingestQueue: Promise<unknown> = Promise.resolve()
  #running = false
  /** Dids fetched right now because they just provided the directory or connected. */
  readonly #eager = new Map<string, Promise<void>>()
  #unlisten: (() => void) | undefined
  #forgottenAt = 0
  readonly #neighbours: NeighbourRecords

  constructor(components: MeshDiscoveryComponents, init: MeshDiscoveryInit) {
    this.#components = components
    const intervalMs = init.intervalMs ?? 10_000
    const refreshMs = init.refreshMs ?? 2 * intervalMs
    this.#init = {
      bootstrap: init.bootstrap ?? [],
      registryUrl: init.registryUrl,
      content: init.content,
      keys: init.keys,
      announce: init.announce ?? true,
      maxRegistryDials: init.maxRegistryDials ?? 16,
      maxRegistryAttempts: init.maxRegistryAttempts ?? 64,
      intervalMs,
      refreshMs,
      reprovideMs: init.reprovideMs ?? 6 * intervalMs,
      recheckMs: init.recheckMs ?? refreshMs,
      maxFetchesPerRound: init.maxFetchesPerRound ?? 16,
      fetchConcurrency: init.fetchConcurrency ?? 4,
      forgetAfterMs: init.forgetAfterMs ?? 7 * 24 * 60 * 60 * 1000,
      dialTimeoutMs: init.dialTimeoutMs ?? 5_000,
      registryTimeoutMs: init.registryTimeoutMs ?? 5_000,
    }
    this.#content = {
      name: init.name,
      version: init.version,
      protocolVersions: init.protocolVersions ?? [],
      multiaddrs: [],
      members: 0,
      bots: 0,
      rooms: 0,
    }
    this.#log = components.logger.child({ component: 'discovery' })
    this.#sublevel = components.store.sublevel<SelfState | DiscoveryEntry>('discovery')
    this.#neighbours = new NeighbourRecords({
      libp2p: components.libp2p,
      logger: components.logger,
      ...(components.datastore !== undefined ? { datastore: components.datastore } : {}),
    })
    if (components.libp2p.peerId.toString() !== components.key.peerId().toString()) {
      throw new TypeError('discovery: libp2p must run on the mesh key')
    }
  }

  readonly [Symbol.toStringTag] = 'MeshDiscovery'

  isStarted(): boolean {
    return this.#running
  }

  async start(): Promise<void> {
    if (this.#running) return
    this.#shutdown = new AbortController()
    const self = (await this.#sublevel.get(SELF_KEY)) as SelfState | undefined
    this.#seq = self?.seq ?? 0
    this.#published = self?.record
    this.#running = true
    await this.#neighbours.start()
    this.#components.libp2p.addEventListener('peer:connect', this.#onConnect)
    this.#unlisten = this.#components.datastore?.onPut?.(this.#onDatastorePut)
    // The first round runs in the background: start() must not wait on the network.
    this.#runSoon(0)
    this.#log.info({ event: 'discovery.started', seq: this.#seq }, 'discovery started')
  }

  async stop(): Promise<void> {
    if (!this.#running) return
    this.#running = false
    this.#components.libp2p.removeEventListener('peer:connect', this.#onConnect)
    this.#unlisten?.()
    this.#unlisten = undefined
    clearTimeout(this.#timer)
    this.#shutdown.abort()
    await this.#round
    await Promise.all(this.#eager.values())
    await this.#ingestQueue
    await this.#neighbours.stop()
  }

  /** The record content for the next publish; a change is published at the next round. */
  setContent(update: MeshContentUpdate): void {
    this.#overrides = { ...this.#overrides, ...update }
    if (this.#running) this.#runSoon(0)
  }

  /** The last record this node published (or signed for publishing). */
  get record(): MeshRecord | undefined {
    return this.#published
  }

  /** Runs one round now (or right after the running one) and resolves when it is done. */
  async refresh(options: AbortOptions = {}): Promise<void> {
    await this.#round
    options.signal?.throwIfAborted()
    clearTimeout(this.#timer)
    this.#startRound()
    await this.#round
  }

  /** Every mesh discovered so far, except this one. */
  async list(options: AbortOptions = {}): Promise<DiscoveredMesh[]> {
    options.signal?.throwIfAborted()
    const entries = (await this.#sublevel
      .values({ gte: MESH_PREFIX, lt: `${MESH_PREFIX}\xff` })
      .all()) as DiscoveryEntry[]
    const now = Date.now()
    return entries
      .map(({ record, firstSeen }) => ({
        did: record.did,
        name: record.name,
        peerId: record.peerId,
        multiaddrs: record.multiaddrs,
        status: this.#status(record, now),
        members: record.members,
        bots: record.bots,
        rooms: record.rooms,
        version: record.version,
        protocolVersions: record.protocolVersions,
        lastHeartbeat: new Date(record.ts).toISOString(),
        firstSeen: new Date(firstSeen).toISOString(),
      }))
      .sort((a, b) => b.lastHeartbeat.localeCompare(a.lastHeartbeat) || a.did.localeCompare(b.did))
  }

  /** The record held for `did` in the store, if any. */
  async get(did: string, options: AbortOptions = {}): Promise<MeshRecord | undefined> {
    options.signal?.throwIfAborted()
    const entry = (await this.#sublevel.get(MESH_PREFIX + did)) as DiscoveryEntry | undefined
    return entry?.record
  }

  /**
   * Fetches `did`'s record from the DHT (and ingests it); MESH_NOT_FOUND when no peer
   * has one. See LookupOptions for `first`, the early end at the first valid record.
   */
  async lookup(did: string, options: LookupOptions = {}): Promise<LookupResult> {
    const signal = this.#signal(options)
    const result = await this.#fetchRecord(did, {
      signal,
      ...(options.first !== undefined ? { first: options.first } : {}),
      ...(options.newerThan !== undefined ? { newerThan: options.newerThan } : {}),
    })
    if (result === undefined) throw new NotFoundError(`no mesh record for ${did}`, { did })
    await this.#ingest(result.record)
    return result
  }

  readonly #onConnect = (event: CustomEvent<PeerId>): void => {
    // The first connection after being alone: look around at once rather than at the next tick.
    if (this.#components.libp2p.getConnections().length <= 1) this.#runSoon(0)
    // A mesh of the directory this node holds but has not listed yet (PeerId = did).
    const peer = event.detail
    const datastore = this.#components.datastore
    if (peer === undefined || datastore === undefined) return
    const held = datastore.has(new Key(PROVIDER_PREFIX + peer.toString()))
    void Promise.resolve(held).then(
      (yes) => {
        if (yes) this.#fetchSoon(peer)
      },
      () => {},
    )
  }

  /** A peer provided the directory to this node: fetch its record now. */
  readonly #onDatastorePut = (key: Key): void => {
    const name = key.toString()
    if (!name.startsWith(PROVIDER_PREFIX)) return
    try {
      this.#fetchSoon(peerIdFromString(name.slice(PROVIDER_PREFIX.length)))
    } catch {
      // not a PeerId; the round's own read of the directory logs it
    }
  }

  /**
   * Fetches a directory mesh's record out of the round, unless it is being fetched or
   * was checked within `recheckMs`. A mesh publishes its record before it provides the
   * directory, to the peers closest to each key; in a network of up to k meshes that is
   * every node, so the record is usually held here already (and validated like any
   * answer); otherwise it comes from the DHT, first valid record, retried twice.
   */
  #fetchSoon(peer: PeerId): void {
    if (!this.#running) return
    let did: string
    try {
      did = didFromPeerId(peer)
    } catch {
      return // not an Ed25519 peer, so not a mesh
    }
    if (did === this.#components.key.did || this.#eager.has(did)) return
    const checked = this.#checkedAt.get(did)
    if (checked !== undefined && Date.now() - checked < this.#init.recheckMs) return
    const fetching = this.#fetchNow(did).finally(() => this.#eager.delete(did))
    this.#eager.set(did, fetching)
  }

  async #fetchNow(did: string): Promise<void> {
    const signal = this.#signal({}, 15_000)
    try {
      const held = (await this.#sublevel.get(MESH_PREFIX + did)) as DiscoveryEntry | undefined
      const newerThan = held?.record.seq ?? 0
      let record = await this.#heldRecord(did)
      if (record !== undefined && record.seq <= newerThan) record = undefined
      for (let attempt = 0; record === undefined && attempt < 3; attempt++) {
        if (attempt > 0) await sleep(500 * attempt, signal)
        record = (await this.#fetchRecord(did, { signal, first: true, newerThan }))?.record
      }
      this.#checkedAt.set(did, Date.now())
      if (record !== undefined) await this.#ingest(record)
    } catch (err) {
      if (this.#shutdown.signal.aborted) return
      this.#log.info(
        { event: 'discovery.fetch_failed', did, err: (err as Error).message },
        'record fetch failed',
      )
    }
  }

  /** `did`'s record as this node's DHT store holds it, if valid. */
  async #heldRecord(did: string): Promise<MeshRecord | undefined> {
    const datastore = this.#components.datastore
    if (datastore === undefined) return undefined
    const key = meshRecordKey(did)
    const dsKey = dhtRecordKey(key)
    try {
      if (!(await datastore.has(dsKey))) return undefined
      return checkMeshRecord(key, DhtRecord.deserialize(await datastore.get(dsKey)).value)
    } catch {
      return undefined
    }
  }

  #runSoon(delay: number): void {
    if (!this.#running) return
    clearTimeout(this.#timer)
    if (this.#round !== undefined) {
      if (delay === 0) this.#rerun = true
      return
    }
    this.#timer = setTimeout(() => this.#startRound(), delay)
  }

  #startRound(): void {
    if (this.#round !== undefined || !this.#running) return
    this.#round = this.#runRound()
      .catch((err: unknown) => {
        if (!this.#shutdown.signal.aborted) {
          this.#log.warn({ event: 'discovery.round_failed', err }, 'discovery round failed')
        }
      })
      .finally(() => {
        this.#round = undefined
        const again = this.#rerun
        this.#rerun = false
        this.#runSoon(again ? 0 : this.#init.intervalMs)
      })
  }

  async #runRound(): Promise<void> {
    const libp2p = this.#components.libp2p
    // A round may take a while on a big network, never longer than a few intervals.
    const signal = this.#signal({}, Math.max(3 * this.#init.intervalMs, 15_000))
    if (libp2p.getConnections().length === 0) await this.#join({ signal })
    await this.#publishIfDue({ signal })
    // alone or not: a node cut off for days should not list meshes long gone
    await this.#forgetStale()
    if (libp2p.getConnections().length === 0) return
    if (this.#init.announce) await this.#provideIfDue({ signal })
    await this.#lookupDirectory({ signal })
  }

  /**
   * Drops meshes not heard of for forgetAfterMs (at most every tenth of that, and every
   * hour at least): a list of meshes long gone is of no use to anyone browsing it.
   */
  async #forgetStale(): Promise<void> {
    const now = Date.now()
    const every = Math.min(this.#init.forgetAfterMs / 10, 60 * 60 * 1000)
    if (now - this.#forgottenAt < every) return
    this.#forgottenAt = now
    await this.#ingestQueue
    const entries = (await this.#sublevel
      .values({ gte: MESH_PREFIX, lt: `${MESH_PREFIX}\xff` })
      .all()) as DiscoveryEntry[]
    for (const { record } of entries) {
      if (now - record.ts <= this.#init.forgetAfterMs || this.#isConnected(record.peerId)) continue
      // through the ingest queue, so a fresh record arriving meanwhile is not deleted
      const next = this.#ingestQueue.then(async () => {
        const held = (await this.#sublevel.get(MESH_PREFIX + record.did)) as DiscoveryEntry | undefined
        if (held === undefined || held.record.seq !== record.seq) return
        await this.#sublevel.del(MESH_PREFIX + record.did)
        this.#checkedAt.delete(record.did)
        this.#log.info(
          { event: 'discovery.mesh_forgotten', did: record.did, name: record.name, lastSeen: record.ts },
          'mesh forgotten',
        )
      })
      this.#ingestQueue = next.catch(() => {})
      await next
    }
  }

  /**
   * Dials every bootstrap peer, and meshes listed by the registry in its order (oldest
   * first) with `maxRegistryDials` in flight, passing over dead ones, until
   * `maxRegistryDials` answered or `maxRegistryAttempts` were tried.
   */
  async #join(options: AbortOptions): Promise<void> {
    const targets: Multiaddr[][] = []
    for (const addr of this.#init.bootstrap) {
      try {
        targets.push([multiaddr(addr)])
      } catch (err) {
        this.#log.warn({ event: 'discovery.bootstrap_invalid', addr, err }, 'invalid bootstrap multiaddr')
      }
    }
    const listed = await this.#registryTargets(options)
    let connected = 0
    let tried = 0
    await Promise.all([
      ...targets.map((addrs) => this.#dial(addrs, options)),
      forEachLimited(listed, this.#init.maxRegistryDials, async (addrs) => {
        if (connected >= this.#init.maxRegistryDials || this.#shutdown.signal.aborted) return
        tried++
        if (await this.#dial(addrs, options)) connected++
      }),
    ])
    if (listed.length > 0) {
      this.#log.info(
        { event: 'discovery.registry_joined', listed: listed.length, tried, connected },
        'dialled meshes from the registry',
      )
    }
  }

  /** Whether the dial succeeded; a failure is logged, never thrown. */
  async #dial(addrs: Multiaddr[], options: AbortOptions): Promise<boolean> {
    const signal = AbortSignal.any([
      options.signal ?? this.#shutdown.signal,
      AbortSignal.timeout(this.#init.dialTimeoutMs),
    ])
    try {
      await this.#components.libp2p.dial(addrs, { signal })
      return true
    } catch (err) {
      if (this.#shutdown.signal.aborted) return false
      this.#log.info(
        { event: 'discovery.dial_failed', addrs: addrs.map(String), err: (err as Error).message },
        'dial failed',
      )
      return false
    }
  }

  /**
   * Up to `maxRegistryAttempts` online meshes from the registry, oldest first (the
   * registry's `sort=age`): a flood of fresh fakes cannot push the long-lived meshes out
   * of reach, whatever names it picks.
   */
  async #registryTargets(options: AbortOptions): Promise<Multiaddr[][]> {
    const url = this.#init.registryUrl
    if (url === undefined) return []
    const self = this.#components.key.did
    const targets: Multiaddr[][] = []
    const wanted = this.#init.maxRegistryAttempts
    let cursor: string | undefined
    // A registry older than `sort` refuses it (400); it is asked again by name, as before.
    let byAge = true
    try {
      for (let page = 0; page < MAX_REGISTRY_PAGES && targets.length < wanted; page++) {
        const query = new URLSearchParams({ status: 'online', limit: '100' })
        if (byAge) query.set('sort', 'age')
        if (cursor !== undefined) query.set('cursor', cursor)
        const signal = AbortSignal.any([
          options.signal ?? this.#shutdown.signal,
          AbortSignal.timeout(this.#init.registryTimeoutMs),
        ])
        const res = await fetch(`${url.replace(/\/+$/, '')}/api/meshes/public?${query}`, { signal })
        if (res.status === 400 && byAge && page === 0) {
          await res.body?.cancel()
          byAge = false
          page--
          continue
        }
        if (!res.ok) throw new Error(`registry answered ${res.status}`)
        const body = (await res.json()) as { meshes?: unknown; nextCursor?: unknown }
        if (!Array.isArray(body.meshes)) throw new Error('registry answer has no meshes list')
        for (const item of body.meshes) {
          const addrs = registryAddrs(item)
          if (addrs !== undefined && addrs.did !== self && addrs.multiaddrs.length > 0) {
            targets.push(addrs.multiaddrs)
          }
        }
        if (typeof body.nextCursor !== 'string' || body.nextCursor === '') break
        cursor = body.nextCursor
      }
    } catch (err) {
      if (this.#shutdown.signal.aborted) return []
      this.#log.warn(
        { event: 'discovery.registry_unreachable', url, err: (err as Error).message },
        'registry unreachable',
      )
    }
    // A handful of peers is enough to join the DHT; the directory finds the rest.
    return targets.slice(0, wanted)
  }

  async #currentContent(options: AbortOptions): Promise<MeshRecordContent> {
    const live = (await this.#init.content?.(options)) ?? {}
    const multiaddrs = this.#components.libp2p.getMultiaddrs().map(String)
    const content = { ...this.#content, multiaddrs, ...live, ...this.#overrides }
    // A host on many interfaces must still fit its record.
    return { ...content, multiaddrs: content.multiaddrs.slice(0, MESH_RECORD_MAX_MULTIADDRS) }
  }

  async #publishIfDue(options: AbortOptions): Promise<void> {
    const content = await this.#currentContent(options)
    const last = this.#published
    const changed = last === undefined || last.did !== this.#components.key.did || !sameContent(last, content)
    const due = last === undefined || Date.now() - last.ts >= this.#init.refreshMs
    if (changed || due) {
      await this.#signAndStore(content)
    } else if (this.#publishReached) {
      return
    }
    if (this.#components.libp2p.getConnections().length === 0) return
    await this.#put(options)
  }

  async #signAndStore(content: MeshRecordContent): Promise<void> {
    const seq = this.#seq + 1
    const keys = await this.#init.keys?.()
    const record = createMeshRecord(this.#components.key, content, seq, Date.now(), keys?.record)
    // One seq for the whole mesh, so a moved record outranks whatever its old key published.
    const moved = (keys?.retired ?? []).map((old) =>
      createMeshRecord(old, { ...content, multiaddrs: [] }, seq, record.ts, keys?.record),
    )
    // Persisted before it leaves the node: a crash after the put must not reuse the seq.
    await this.#sublevel.put(SELF_KEY, { seq, record })
    this.#seq = seq
    this.#published = record
    this.#moved = moved
    this.#publishReached = false
  }

  async #put(options: AbortOptions): Promise<void> {
    const record = this.#published
    if (record === undefined) return
    let reached = 0
    for (const r of [record, ...this.#moved]) {
      for await (const event of this.#components.libp2p.services.dht.put(
        meshRecordKey(r.did),
        encodeMeshRecord(r),
        options,
      )) {
        if (r === record && event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') reached++
      }
    }
    this.#publishReached = reached > 0
    this.#log.debug(
      { event: 'discovery.published', seq: record.seq, reached, moved: this.#moved.length },
      'mesh record published',
    )
  }

  async #provideIfDue(options: AbortOptions): Promise<void> {
    if (this.#providedAt > 0 && Date.now() - this.#providedAt < this.#init.reprovideMs) return
    let reached = 0
    for await (const event of this.#components.libp2p.services.dht.provide(MESH_DIRECTORY_CID, options)) {
      if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') reached++
    }
    if (reached > 0) this.#providedAt = Date.now()
    this.#log.debug({ event: 'discovery.provided', reached }, 'directory provided')
  }

  async #lookupDirectory(options: AbortOptions): Promise<void> {
    const self = this.#components.key.did
    const dids = new Set<string>()
    const add = (peer: PeerId): void => {
      try {
        const did = didFromPeerId(peer)
        if (did !== self) dids.add(did)
      } catch {
        // Not an Ed25519 peer, so not a mesh.
      }
    }
    for await (const event of this.#components.libp2p.services.dht.findProviders(
      MESH_DIRECTORY_CID,
      options,
    )) {
      if (event.name === 'PROVIDER') for (const peer of event.providers) add(peer.id)
    }
    for (const peer of await this.#heldProviders(options)) add(peer)

    const now = Date.now()
    const known = new Set<string>()
    for (const did of dids) if ((await this.#sublevel.get(MESH_PREFIX + did)) !== undefined) known.add(did)
    const due = [...dids]
      .filter((did) => now - (this.#checkedAt.get(did) ?? 0) >= this.#init.recheckMs || !known.has(did))
      .sort(
        (a, b) =>
          Number(known.has(a)) - Number(known.has(b)) ||
          (this.#checkedAt.get(a) ?? 0) - (this.#checkedAt.get(b) ?? 0),
      )
      .slice(0, this.#init.maxFetchesPerRound)

    await forEachLimited(due, this.#init.fetchConcurrency, async (did) => {
      try {
        // A new mesh is listed at its first valid record; a known one is only re-fetched
        // to the end of the query when no peer has a newer record than the one held.
        const held = (await this.#sublevel.get(MESH_PREFIX + did)) as DiscoveryEntry | undefined
        const result = await this.#fetchRecord(did, {
          ...options,
          first: true,
          newerThan: held?.record.seq ?? 0,
        })
        this.#checkedAt.set(did, Date.now())
        if (result !== undefined) await this.#ingest(result.record)
      } catch (err) {
        if (options.signal?.aborted === true) throw err
        this.#log.info(
          { event: 'discovery.fetch_failed', did, err: (err as Error).message },
          'record fetch failed',
        )
      }
    })
  }

  async #heldProviders(options: AbortOptions): Promise<PeerId[]> {
    const datastore = this.#components.datastore
    if (datastore === undefined) return []
    const peers: PeerId[] = []
    for await (const key of datastore.queryKeys({ prefix: PROVIDER_PREFIX }, options)) {
      const id = key.toString().slice(PROVIDER_PREFIX.length)
      try {
        peers.push(peerIdFromString(id))
      } catch {
        this.#log.debug({ event: 'discovery.provider_key_invalid', key: key.toString() }, 'bad provider key')
      }
    }
    return peers
  }

  /**
   * Runs a DHT get for `did`'s record and keeps the best valid record seen, also when
   * kad-dht's get fails afterwards (its correction step throws if a peer with a stale
   * record refuses the fix, and would otherwise lose the answer). With `first`, leaves
   * the query at the first valid record newer than `newerThan` (see LookupOptions).
   */
  async #fetchRecord(did: string, options: LookupOptions): Promise<LookupResult | undefined> {
    const key = meshRecordKey(did)
    const selfId = this.#components.libp2p.peerId.toString()
    const started = performance.now()
    const first = options.first === true
    const newerThan = options.newerThan ?? 0
    if (first) {
      // One round over open connections before the walk; a peer that stalls costs at
      // most NEIGHBOUR_ROUND_MS, then kad-dht walks as it always did.
      const answer = await this.#neighbours.get(key, {
        signal: this.#signal(options, NEIGHBOUR_ROUND_MS),
        parse: (bytes) => {
          const record = checkMeshRecord(key, bytes)
          return record.seq > newerThan ? record : undefined
        },
      })
      if (answer !== undefined) {
        const ms = performance.now() - started
        return { record: answer.value, hops: 1, ms, firstMs: ms, complete: false, via: 'neighbours' }
      }
      options.signal?.throwIfAborted()
    }
    const depth = new Map<string, number>()
    let best: { record: MeshRecord; bytes: Uint8Array; hops: number; firstMs: number } | undefined
    const consider = async (bytes: Uint8Array, hops: number): Promise<void> => {
      try {
        await validateMeshRecord(key, bytes)
      } catch (err) {
        this.#log.debug(
          { event: 'discovery.record_invalid', did, err: (err as Error).message },
          'invalid record',
        )
        return
      }
      const record = parseMeshRecord(bytes)
      const order = best === undefined ? 1 : compareMeshRecords(record, best.record, bytes, best.bytes)
      if (order > 0) best = { record, bytes, hops, firstMs: performance.now() - started }
      else if (order === 0 && best !== undefined) best.hops = Math.min(best.hops, hops)
    }
    const onEvent = async (event: QueryEvent): Promise<void> => {
      if (event.name === 'SEND_QUERY') {
        if (!depth.has(event.to.toString())) depth.set(event.to.toString(), 1)
      } else if (event.name === 'PEER_RESPONSE') {
        const d = depth.get(event.from.toString()) ?? 1
        for (const peer of event.closer)
          if (!depth.has(peer.id.toString())) depth.set(peer.id.toString(), d + 1)
        if (event.record !== undefined) await consider(event.record.value, d)
      } else if (event.name === 'VALUE') {
        const from = event.from.toString()
        await consider(event.value, from === selfId ? 0 : (depth.get(from) ?? 1))
      }
    }
    let complete = true
    try {
      for await (const event of this.#components.libp2p.services.dht.get(key, { signal: options.signal })) {
        await onEvent(event)
        // Leaving the loop returns kad-dht's generator, whose query manager then aborts
        // every request still in flight. Only consider() sets best, after the validator.
        // (VALUE events, the own copy included, only come once the query is over.)
        if (first && event.name === 'PEER_RESPONSE' && best !== undefined && best.record.seq > newerThan) {
          complete = false
          break
        }
      }
    } catch (err) {
      if (best === undefined || options.signal?.aborted === true) throw err
      this.#log.debug(
        { event: 'discovery.get_incomplete', did, err: (err as Error).message },
        'get failed late',
      )
    }
    if (best === undefined) return undefined
    return {
      record: best.record,
      hops: best.hops,
      ms: performance.now() - started,
      firstMs: best.firstMs,
      complete,
      via: 'dht',
    }
  }

  /**
   * Stores `record` if it is newer than the one held; one at a time so two finds never
   * race. A mesh is listed once, under its current key: a record with a rotation chain
   * drops the entries of the keys the chain retired, and a moved record is not listed.
   */
  async #ingest(record: MeshRecord): Promise<void> {
    if (record.did === this.#components.key.did) return
    if (
      record.rotations?.some(
        (r) => r.previous === this.#components.key.did || r.next === this.#components.key.did,
      )
    )
      return
    const next = this.#ingestQueue.then(async () => {
      const key = MESH_PREFIX + record.did
      const held = (await this.#sublevel.get(key)) as DiscoveryEntry | undefined
      if (held !== undefined && held.record.seq >= record.seq) return
      // a stale copy some DHT node still holds does not bring back a forgotten mesh
      if (Date.now() - record.ts > this.#init.forgetAfterMs) return
      if (record.rotations !== undefined) {
        const current = currentDidOf(record)
        const retired = record.rotations.map((r) => r.previous).filter((did) => did !== current)
        if (current !== record.did) retired.push(record.did)
        for (const did of retired) await this.#sublevel.del(MESH_PREFIX + did)
        if (current !== record.did) {
          this.#log.debug(
            { event: 'discovery.mesh_moved', did: record.did, current },
            'mesh moved to a new key',
          )
          return
        }
      }
      const now = Date.now()
      await this.#sublevel.put(key, { record, firstSeen: held?.firstSeen ?? now, updatedAt: now })
      const fields = { did: record.did, name: record.name, seq: record.seq }
      if (held === undefined) this.#log.info({ event: 'discovery.mesh_found', ...fields }, 'mesh found')
      else this.#log.debug({ event: 'discovery.mesh_updated', ...fields }, 'mesh updated')
    })
    this.#ingestQueue = next.catch(() => {})
    await next
  }

  #status(record: MeshRecord, now: number): MeshStatus {
    const age = now - record.ts
    if (age <= 3 * this.#init.intervalMs || this.#isConnected(record.peerId)) return 'online'
    if (age <= 10 * this.#init.intervalMs) return 'idle'
    return 'offline'
  }

  #isConnected(peerId: string): boolean {
    try {
      return this.#components.libp2p.getConnections(peerIdFromString(peerId)).length > 0
    } catch {
      return false
    }
  }

  #signal(options: AbortOptions, timeoutMs?: number): AbortSignal {
    const signals = [this.#shutdown.signal]
    if (options.signal !== undefined) signals.push(options.signal)
    if (timeoutMs !== undefined) signals.push(AbortSignal.timeout(timeoutMs))
    return AbortSignal.any(signals)
  }
}

export function createMeshDiscovery(
  components: MeshDiscoveryComponents,
  init: MeshDiscoveryInit,
): MeshDiscovery {
  return new MeshDiscovery(components, init)
}

function sameContent(record: MeshRecord, content: MeshRecordContent): boolean {
  const { name, multiaddrs, protocolVersions, version, members, bots, rooms } = record
  const a = canonicalBytes({ name, multiaddrs, protocolVersions, version, members, bots, rooms })
  const b = canonicalBytes(content)
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i])
}

/** The multiaddrs of one registry list item (with `/p2p/<peerId>` added when missing). */
function registryAddrs(item: unknown): { did: string; multiaddrs: Multiaddr[] } | undefined {
  if (typeof item !== 'object' || item === null) return undefined
  const { did, peerId, multiaddrs } = item as { did?: unknown; peerId?: unknown; multiaddrs?: unknown }
  if (typeof did !== 'string' || !Array.isArray(multiaddrs)) return undefined
  const out: Multiaddr[] = []
  for (const addr of multiaddrs.slice(0, 16)) {
    if (typeof addr !== 'string') continue
    try {
      let ma = multiaddr(addr)
      if (ma.getComponents().every((c) => c.name !== 'p2p') && typeof peerId === 'string') {
        ma = ma.encapsulate(`/p2p/${peerId}`)
      }
      out.push(ma)
    } catch {
      // A registry may list what this node cannot parse; the other addresses still count.
    }
  }
  return { did, multiaddrs: out }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T
      await fn(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
