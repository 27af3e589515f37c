import type { AbortOptions } from '@libp2p/interface'
import { Record as DhtRecord, type QueryEvent } from '@libp2p/kad-dht'
import type { Datastore } from 'interface-datastore'
import type { Logger } from '../log.ts'
import type { MeshLibp2p } from './host.ts'
import {
  checkMeshRecord,
  compareMeshRecords,
  dhtRecordKey,
  type MeshRecord,
  meshRecordKey,
  parseMeshRecord,
  validateMeshRecord,
} from './mesh-record.ts'
import type { NeighbourRecords } from './neighbour-records.ts'

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

export interface RecordLookupComponents {
  libp2p: Pick<MeshLibp2p, 'peerId' | 'services'>
  /** Asked first by a `first` lookup. */
  neighbours: Pick<NeighbourRecords, 'get'>
  logger: Logger
  /** libp2p's datastore, for `held()`; without it `held()` finds nothing. */
  datastore?: Datastore
}

/**
 * How long a `first` lookup waits on its connected neighbours before walking the DHT.
 * They answer in one round trip; this only bounds peers that accept a stream and stall.
 */
const NEIGHBOUR_ROUND_MS = 500

/**
 * Finds a mesh's record and keeps only what the record validator accepts: a record
 * filed under a did is signed by that did, so a forged or garbled answer is dropped
 * (and logged at debug), never returned.
 */
export class RecordLookup {
  readonly #components: RecordLookupComponents
  readonly #log: Logger

  constructor(components: RecordLookupComponents) {
    this.#components = components
    this.#log = components.logger.child({ component: 'discovery' })
  }

  /** `did`'s record as this node's DHT store holds it, if valid. */
  async held(did: string, options: AbortOptions = {}): Promise<MeshRecord | undefined> {
    const datastore = this.#components.datastore
    if (datastore === undefined) return undefined
    const key = meshRecordKey(did)
    const dsKey = dhtRecordKey(key)
    try {
      if (!(await datastore.has(dsKey, options))) return undefined
      return checkMeshRecord(key, DhtRecord.deserialize(await datastore.get(dsKey, options)).value)
    } catch {
      return undefined
    }
  }

  /**
   * Runs a DHT get for `did`'s record and keeps the best valid record seen, also when
   * kad-dht's get fails afterwards (its correction step throws if a peer with a stale
   * record refuses the fix, and would otherwise lose the answer). With `first`, leaves
   * the query at the first valid record newer than `newerThan` (see LookupOptions).
   * Undefined when no peer has a valid record.
   */
  async fetch(did: string, options: LookupOptions = {}): Promise<LookupResult | undefined> {
    const key = meshRecordKey(did)
    const selfId = this.#components.libp2p.peerId.toString()
    const started = performance.now()
    const first = options.first === true
    const newerThan = options.newerThan ?? 0
    if (first) {
      // One round over open connections before the walk; a peer that stalls costs at
      // most NEIGHBOUR_ROUND_MS, then kad-dht walks as it always did.
      const signals = [AbortSignal.timeout(NEIGHBOUR_ROUND_MS)]
      if (options.signal !== undefined) signals.push(options.signal)
      const answer = await this.#components.neighbours.get(key, {
        signal: AbortSignal.any(signals),
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
}
