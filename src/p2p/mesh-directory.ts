import type { AbortOptions, PeerId, Startable } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Datastore, Key } from 'interface-datastore'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { didFromPeerId } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import { forEachLimited, sleep } from './concurrency.ts'
import { MESH_DIRECTORY_CID } from './constants.ts'
import type { DiscoveredMeshBook } from './discovered-meshes.ts'
import type { MeshLibp2p } from './host.ts'
import type { RecordLookup } from './record-lookup.ts'

/** libp2p's datastore, telling of its writes when it can (RecordGuardDatastore's `onPut`). */
export type DirectoryDatastore = Datastore & { onPut?(listener: (key: Key) => void): () => void }

export interface MeshDirectoryComponents {
  libp2p: Pick<MeshLibp2p, 'services' | 'addEventListener' | 'removeEventListener'>
  /** Where found records go, and when each was last checked. */
  book: Pick<DiscoveredMeshBook, 'get' | 'ingest' | 'checkedAt' | 'markChecked'>
  lookup: Pick<RecordLookup, 'fetch' | 'held'>
  logger: Logger
  /**
   * When given, directory entries this node holds itself are read from it: kad-dht's
   * findProviders stops after k (20) local providers, which would hide most of the
   * directory from the very nodes that store it. When it also tells of its writes, a
   * mesh that provides the directory to this node is fetched at once, not at the next
   * round.
   */
  datastore?: DirectoryDatastore
}

export interface MeshDirectoryInit {
  /** This mesh's did, never fetched. */
  self: string
  /** The directory CID is provided again this often. */
  reprovideMs: number
  /** A known mesh's record is fetched again at most this often. */
  recheckMs: number
  /** Records fetched per round at most (new meshes first). */
  maxFetchesPerRound: number
  /** Parallel record fetches. */
  fetchConcurrency: number
}

const PROVIDER_PREFIX = `/dht/provider/${uint8ArrayToString(MESH_DIRECTORY_CID.multihash.bytes, 'base32')}/`

/**
 * The mesh directory: every listed mesh provides one well-known CID, so enumerating
 * its providers enumerates the meshes. Provides it for this mesh, reads it each round
 * and fetches the records due; fetches at once a mesh that just provided it to this
 * node or, held here already, just connected.
 */
export class MeshDirectory implements Startable {
  readonly #components: MeshDirectoryComponents
  readonly #init: MeshDirectoryInit
  readonly #log: Logger
  #providedAt = 0
  #running = false
  #shutdown = new AbortController()
  #unlisten: (() => void) | undefined
  /** Dids fetched right now because they just provided the directory or connected. */
  readonly #eager = new Map<string, Promise<void>>()

  constructor(components: MeshDirectoryComponents, init: MeshDirectoryInit) {
    this.#components = components
    this.#init = init
    this.#log = components.logger.child({ component: 'discovery' })
  }

  readonly [Symbol.toStringTag] = 'MeshDirectory'

  isStarted(): boolean {
    return this.#running
  }

  start(): void {
    if (this.#running) return
    this.#running = true
    this.#shutdown = new AbortController()
    this.#components.libp2p.addEventListener('peer:connect', this.#onConnect)
    this.#unlisten = this.#components.datastore?.onPut?.(this.#onDatastorePut)
  }

  async stop(): Promise<void> {
    if (!this.#running) return
    this.#running = false
    this.#components.libp2p.removeEventListener('peer:connect', this.#onConnect)
    this.#unlisten?.()
    this.#unlisten = undefined
    this.#shutdown.abort()
    await Promise.all(this.#eager.values())
  }

  /** Provides the directory CID unless a provide reached a peer within `reprovideMs`. */
  async provideIfDue(options: AbortOptions = {}): Promise<void> {
    if (this.#providedAt > 0 && Date.now() - this.#providedAt < this.#init.reprovideMs) return
    let reached = 0
    for await (const event of this.#components.libp2p.services.dht.provide(MESH_DIRECTORY_CID, options)) {
      if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') reached++
    }
    if (reached > 0) this.#providedAt = Date.now()
    this.#log.debug({ event: 'discovery.provided', reached }, 'directory provided')
  }

  /**
   * Reads the directory and fetches the records due: new meshes first, then those
   * checked longest ago, at most `maxFetchesPerRound`.
   */
  async lookup(options: AbortOptions = {}): Promise<void> {
    const { book } = this.#components
    const self = this.#init.self
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
    for (const did of dids) if ((await book.get(did)) !== undefined) known.add(did)
    const due = [...dids]
      .filter((did) => now - (book.checkedAt(did) ?? 0) >= this.#init.recheckMs || !known.has(did))
      .sort(
        (a, b) =>
          Number(known.has(a)) - Number(known.has(b)) || (book.checkedAt(a) ?? 0) - (book.checkedAt(b) ?? 0),
      )
      .slice(0, this.#init.maxFetchesPerRound)

    await forEachLimited(due, this.#init.fetchConcurrency, async (did) => {
      try {
        // A new mesh is listed at its first valid record; a known one is only re-fetched
        // to the end of the query when no peer has a newer record than the one held.
        const held = await book.get(did)
        const result = await this.#components.lookup.fetch(did, {
          ...options,
          first: true,
          newerThan: held?.seq ?? 0,
        })
        book.markChecked(did)
        if (result !== undefined) await book.ingest(result.record)
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

  /** A mesh of the directory this node holds but has not listed yet (PeerId = did). */
  readonly #onConnect = (event: CustomEvent<PeerId>): void => {
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
    if (did === this.#init.self || this.#eager.has(did)) return
    const checked = this.#components.book.checkedAt(did)
    if (checked !== undefined && Date.now() - checked < this.#init.recheckMs) return
    const fetching = this.#fetchNow(did).finally(() => this.#eager.delete(did))
    this.#eager.set(did, fetching)
  }

  async #fetchNow(did: string): Promise<void> {
    const { book, lookup } = this.#components
    const signal = AbortSignal.any([this.#shutdown.signal, AbortSignal.timeout(15_000)])
    try {
      const newerThan = (await book.get(did))?.seq ?? 0
      let record = await lookup.held(did)
      if (record !== undefined && record.seq <= newerThan) record = undefined
      for (let attempt = 0; record === undefined && attempt < 3; attempt++) {
        if (attempt > 0) await sleep(500 * attempt, signal)
        record = (await lookup.fetch(did, { signal, first: true, newerThan }))?.record
      }
      book.markChecked(did)
      if (record !== undefined) await book.ingest(record)
    } catch (err) {
      if (this.#shutdown.signal.aborted) return
      this.#log.info(
        { event: 'discovery.fetch_failed', did, err: (err as Error).message },
        'record fetch failed',
      )
    }
  }
}
