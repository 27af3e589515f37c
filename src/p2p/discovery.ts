import type { AbortOptions, PeerId, Startable } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { NotFoundError } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import type { MeshStore } from '../store/index.ts'
import { type DiscoveredMesh, DiscoveredMeshBook, type MeshStatus } from './discovered-meshes.ts'
import type { MeshLibp2p } from './host.ts'
import { type DirectoryDatastore, MeshDirectory } from './mesh-directory.ts'
import type { MeshRecord, MeshRecordKeys } from './mesh-record.ts'
import { NeighbourRecords } from './neighbour-records.ts'
import { type BootstrapSource, NetworkJoin } from './network-join.ts'
import { type LookupOptions, type LookupResult, RecordLookup } from './record-lookup.ts'
import { type MeshContentUpdate, RecordPublisher } from './record-publisher.ts'

export type { BootstrapSource, BootstrapTargetsOptions } from './network-join.ts'
export type { DiscoveredMesh, LookupOptions, LookupResult, MeshContentUpdate, MeshStatus }

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
  datastore?: DirectoryDatastore
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
   * Meshes to dial on start and whenever the node is alone, beyond `bootstrap`;
   * default none. The composition root gives the registry's public list
   * (`createRegistryBootstrap` in src/registry), which asks for the online meshes oldest
   * first, so that a flood of fresh entries comes last.
   */
  registry?: BootstrapSource
  /** Meshes from the registry connected at most per join, and dials in flight; default 16 (enough to join the DHT). */
  maxRegistryDials?: number
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
  /**
   * After a key rotation: the mesh's identity and rotation chain, put in every record,
   * and the keys it retired, each of which keeps publishing a "moved" record (signed by
   * that old key, no addresses, the chain naming the current key) so that a lookup of
   * an old did finds the new one. Default: none (a mesh that never rotated).
   */
  keys?: () => Promise<{ record: MeshRecordKeys; retired: Ed25519KeyPair[] } | undefined>
}

/**
 * Publishes this mesh in the DHT and finds the others.
 *
 * On start: dials bootstrap peers and meshes from the registry, publishes the signed
 * record under `/mesh/<did>` (seq persisted, so it only grows across restarts),
 * provides the directory CID and looks the directory up. Then every `intervalMs`: the
 * same round — republish when content changed or the record is due, re-join when
 * alone, and ingest every record with a seq higher than the one held.
 *
 * A facade that schedules the rounds over its parts: NetworkJoin (bootstrap peers and
 * the injected BootstrapSource), RecordPublisher (our record), MeshDirectory (provide,
 * enumerate, fetch what is due), RecordLookup (find and validate one record) and
 * DiscoveredMeshBook (what we know, forgotten after `forgetAfterMs`).
 */
export class MeshDiscovery implements Startable {
  readonly #components: MeshDiscoveryComponents
  readonly #intervalMs: number
  readonly #announce: boolean
  readonly #log: Logger
  readonly #neighbours: NeighbourRecords
  readonly #lookup: RecordLookup
  readonly #book: DiscoveredMeshBook
  readonly #publisher: RecordPublisher
  readonly #directory: MeshDirectory
  readonly #join: NetworkJoin
  #shutdown = new AbortController()
  #timer: ReturnType<typeof setTimeout> | undefined
  #round: Promise<void> | undefined
  #rerun = false
  #running = false

  constructor(components: MeshDiscoveryComponents, init: MeshDiscoveryInit) {
    if (components.libp2p.peerId.toString() !== components.key.peerId().toString()) {
      throw new TypeError('discovery: libp2p must run on the mesh key')
    }
    this.#components = components
    const { libp2p, key, store, logger, datastore } = components
    const self = key.did
    const intervalMs = init.intervalMs ?? 10_000
    const refreshMs = init.refreshMs ?? 2 * intervalMs
    this.#intervalMs = intervalMs
    this.#announce = init.announce ?? true
    this.#log = logger.child({ component: 'discovery' })
    this.#neighbours = new NeighbourRecords({
      libp2p,
      logger,
      ...(datastore !== undefined ? { datastore } : {}),
    })
    this.#lookup = new RecordLookup({
      libp2p,
      neighbours: this.#neighbours,
      logger,
      ...(datastore !== undefined ? { datastore } : {}),
    })
    this.#book = new DiscoveredMeshBook(
      { store, logger, isConnected: (peerId) => this.#isConnected(peerId) },
      { self, intervalMs, forgetAfterMs: init.forgetAfterMs ?? 7 * 24 * 60 * 60 * 1000 },
    )
    this.#publisher = new RecordPublisher(
      { libp2p, key, store, logger },
      {
        name: init.name,
        version: init.version,
        refreshMs,
        ...(init.protocolVersions !== undefined ? { protocolVersions: init.protocolVersions } : {}),
        ...(init.content !== undefined ? { content: init.content } : {}),
        ...(init.keys !== undefined ? { keys: init.keys } : {}),
      },
    )
    this.#directory = new MeshDirectory(
      {
        libp2p,
        book: this.#book,
        lookup: this.#lookup,
        logger,
        ...(datastore !== undefined ? { datastore } : {}),
      },
      {
        self,
        reprovideMs: init.reprovideMs ?? 6 * intervalMs,
        recheckMs: init.recheckMs ?? refreshMs,
        maxFetchesPerRound: init.maxFetchesPerRound ?? 16,
        fetchConcurrency: init.fetchConcurrency ?? 4,
      },
    )
    this.#join = new NetworkJoin(
      { libp2p, logger, ...(init.registry !== undefined ? { source: init.registry } : {}) },
      {
        self,
        bootstrap: init.bootstrap ?? [],
        maxSourceDials: init.maxRegistryDials ?? 16,
        dialTimeoutMs: init.dialTimeoutMs ?? 5_000,
      },
    )
  }

  readonly [Symbol.toStringTag] = 'MeshDiscovery'

  isStarted(): boolean {
    return this.#running
  }

  async start(): Promise<void> {
    if (this.#running) return
    this.#shutdown = new AbortController()
    const seq = await this.#publisher.load()
    this.#running = true
    await this.#neighbours.start()
    this.#components.libp2p.addEventListener('peer:connect', this.#onConnect)
    this.#components.libp2p.addEventListener('self:peer:update', this.#onSelfUpdate) // reachability (SPEC §10)
    this.#directory.start()
    // The first round runs in the background: start() must not wait on the network.
    this.#runSoon(0)
    this.#log.info({ event: 'discovery.started', seq }, 'discovery started')
  }

  async stop(): Promise<void> {
    if (!this.#running) return
    this.#running = false
    this.#components.libp2p.removeEventListener('peer:connect', this.#onConnect)
    this.#components.libp2p.removeEventListener('self:peer:update', this.#onSelfUpdate) // reachability (SPEC §10)
    clearTimeout(this.#timer)
    this.#shutdown.abort()
    await Promise.all([this.#round, this.#directory.stop()])
    await this.#book.idle()
    await this.#neighbours.stop()
  }

  /** The record content for the next publish; a change is published at the next round. */
  setContent(update: MeshContentUpdate): void {
    this.#publisher.setContent(update)
    if (this.#running) this.#runSoon(0)
  }

  /** The last record this node published (or signed for publishing). */
  get record(): MeshRecord | undefined {
    return this.#publisher.record
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
    return this.#book.list(options)
  }

  /** The record held for `did` in the store, if any. */
  async get(did: string, options: AbortOptions = {}): Promise<MeshRecord | undefined> {
    return this.#book.get(did, options)
  }

  /**
   * Fetches `did`'s record from the DHT (and ingests it); MESH_NOT_FOUND when no peer
   * has one. See LookupOptions for `first`, the early end at the first valid record.
   */
  async lookup(did: string, options: LookupOptions = {}): Promise<LookupResult> {
    const signals = [this.#shutdown.signal]
    if (options.signal !== undefined) signals.push(options.signal)
    const result = await this.#lookup.fetch(did, {
      signal: AbortSignal.any(signals),
      ...(options.first !== undefined ? { first: options.first } : {}),
      ...(options.newerThan !== undefined ? { newerThan: options.newerThan } : {}),
    })
    if (result === undefined) throw new NotFoundError(`no mesh record for ${did}`, { did })
    await this.#book.ingest(result.record)
    return result
  }

  /** The first connection after being alone: look around at once rather than at the next tick. */
  readonly #onConnect = (_event: CustomEvent<PeerId>): void => {
    if (this.#components.libp2p.getConnections().length <= 1) this.#runSoon(0)
  }

  // reachability (SPEC §10)
  #addresses = ''
  /**
   * Our addresses changed (a relay reservation taken, refreshed or lost): the record
   * says so at once rather than at the next round.
   */
  readonly #onSelfUpdate = (): void => {
    const addresses = this.#components.libp2p.getMultiaddrs().map(String).join()
    if (addresses === this.#addresses) return
    this.#addresses = addresses
    this.#runSoon(0)
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
        this.#runSoon(again ? 0 : this.#intervalMs)
      })
  }

  async #runRound(): Promise<void> {
    const libp2p = this.#components.libp2p
    // A round may take a while on a big network, never longer than a few intervals.
    const signal = AbortSignal.any([
      this.#shutdown.signal,
      AbortSignal.timeout(Math.max(3 * this.#intervalMs, 15_000)),
    ])
    if (libp2p.getConnections().length === 0) await this.#join.join({ signal })
    await this.#publisher.publishIfDue({ signal })
    // alone or not: a node cut off for days should not list meshes long gone
    await this.#book.forgetStale()
    if (libp2p.getConnections().length === 0) return
    if (this.#announce) await this.#directory.provideIfDue({ signal })
    await this.#directory.lookup({ signal })
  }

  #isConnected(peerId: string): boolean {
    try {
      return this.#components.libp2p.getConnections(peerIdFromString(peerId)).length > 0
    } catch {
      return false
    }
  }
}

export function createMeshDiscovery(
  components: MeshDiscoveryComponents,
  init: MeshDiscoveryInit,
): MeshDiscovery {
  return new MeshDiscovery(components, init)
}
