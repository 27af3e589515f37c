import { createHash } from 'node:crypto'
import type { AbortOptions, Connection, PeerId, Startable, Stream } from '@libp2p/interface'
import { Record as DhtRecord } from '@libp2p/kad-dht'
import { type LengthPrefixedStream, lpStream, RateLimiter } from '@libp2p/utils'
import type { Datastore } from 'interface-datastore'
import { compare } from 'uint8arrays/compare'
import { xor } from 'uint8arrays/xor'
import type { Logger } from '../log.ts'
import { MESH_RECORD_PROTOCOL } from './constants.ts'
import type { MeshLibp2p } from './host.ts'
import { dhtRecordKey, MESH_RECORD_NAMESPACE } from './mesh-record.ts'

/**
 * The first round of a lookup, over connections that are already open.
 *
 * kad-dht walks from the peers of its routing table closest to the key, dialling those
 * that are not connected (TCP, Noise, Yamux, identify: several round trips before the
 * first request), opening a new stream per request (a protocol negotiation round trip)
 * and answering every GET_VALUE with up to k closer peers read from the peer store. A
 * record is held by the k peers closest to its key, and a node is connected to some of
 * its DHT neighbours anyway; so before walking, a lookup asks the connected neighbours
 * closest to the key for the record itself (closest first, hedged: see `get`), on a
 * stream kept open per neighbour: one round trip, and the answer is the record and
 * nothing else.
 *
 * Wire (`/mesh/record/1.0.0`): requests and answers are length-prefixed frames on one
 * stream, answered in order. A request is a DHT key of the mesh record namespace
 * (`/mesh/<did>`, at most MAX_KEY_BYTES); the answer is the record value the node's DHT
 * store holds under it, or an empty frame. A stream idle for IDLE_MS is closed by the
 * server; any other request ends the stream. Any DHT server of the mesh network
 * answers it: no new state, only a narrower read of what kad-dht stores.
 *
 * The asker decides what a good answer is (`parse`: the record validator, a seq floor);
 * the first answer it takes ends the round. `undefined` means no connected neighbour had
 * one, and the caller walks the DHT.
 */
export interface NeighbourRecordsComponents {
  libp2p: MeshLibp2p
  logger: Logger
  /** libp2p's datastore, where kad-dht keeps the records; without it this node only asks. */
  datastore?: Datastore
}

export interface NeighbourRecordsInit {
  /** Neighbours asked at most at once; default 3 (Kademlia's α). */
  alpha?: number
  /** Neighbours asked at most per lookup, closest first; default 6. */
  maxAsked?: number
  /** Largest answer read; default 8 KiB (a mesh record is at most 4 KiB). */
  maxAnswerBytes?: number
  /** Inbound streams of this protocol per connection; default 4. */
  maxInboundStreams?: number
  /**
   * Requests a peer may make per second, over all its streams; beyond, its stream is
   * ended and it waits for the next second; default 100.
   */
  maxRequestsPerSecond?: number
}

export interface NeighbourGetOptions<T> extends AbortOptions {
  /** The answer as the caller takes it, or undefined (or a throw) to pass on it. */
  parse(value: Uint8Array): T | undefined | Promise<T | undefined>
}

export interface NeighbourAnswer<T> {
  value: T
  from: PeerId
  /** How many neighbours were asked. */
  asked: number
}

/** Requests longer than this are refused. */
export const MAX_KEY_BYTES = 256
/**
 * A server closes a stream that brings no request for this long. Kept streams cost a
 * few hundred bytes each (at most maxInboundStreams per connection); reopening one costs
 * a round trip on the next lookup.
 */
const IDLE_MS = 10 * 60_000
/** An asker stops reusing a stream idle this long, well before the server closes it. */
const REUSE_MS = 9 * 60_000
/** An exchange that takes longer aborts its stream. */
const REQUEST_TIMEOUT_MS = 5_000
/** How long kad-dht keeps a received record valid (its PROVIDERS_VALIDITY). */
const RECORD_VALIDITY_MS = 48 * 60 * 60 * 1000

const NAMESPACE_PREFIX = new TextEncoder().encode(`/${MESH_RECORD_NAMESPACE}/`)

interface Neighbour {
  id: PeerId
  kadId: Uint8Array
}

/** The Kademlia id of a key or peer: sha256 of its bytes, as kad-dht computes it. */
export function kadIdOf(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest())
}

function isMeshRecordKey(key: Uint8Array): boolean {
  return (
    key.byteLength > NAMESPACE_PREFIX.byteLength &&
    key.byteLength <= MAX_KEY_BYTES &&
    NAMESPACE_PREFIX.every((byte, i) => key[i] === byte)
  )
}

export class NeighbourRecords implements Startable {
  readonly #components: NeighbourRecordsComponents
  readonly #init: Required<Omit<NeighbourRecordsInit, 'maxRequestsPerSecond'>>
  /** Moving average of exchange times, ms: when to hedge a slow one. */
  #exchangeMs = 20
  readonly #log: Logger
  readonly #neighbours = new Map<string, Neighbour>()
  /** One kept stream per neighbour. */
  readonly #channels = new Map<string, Channel>()
  /** Streams this node serves, ended on stop. */
  readonly #served = new Set<Stream>()
  readonly #limiter: RateLimiter
  #topologyId: string | undefined
  #running = false

  constructor(components: NeighbourRecordsComponents, init: NeighbourRecordsInit = {}) {
    this.#components = components
    this.#init = {
      alpha: init.alpha ?? 3,
      maxAsked: init.maxAsked ?? 6,
      maxAnswerBytes: init.maxAnswerBytes ?? 8 * 1024,
      maxInboundStreams: init.maxInboundStreams ?? 4,
    }
    this.#limiter = new RateLimiter({ points: init.maxRequestsPerSecond ?? 100, duration: 1 })
    this.#log = components.logger.child({ component: 'neighbour-records' })
  }

  readonly [Symbol.toStringTag] = 'NeighbourRecords'

  isStarted(): boolean {
    return this.#running
  }

  async start(): Promise<void> {
    if (this.#running) return
    this.#running = true
    const { libp2p, datastore } = this.#components
    if (datastore !== undefined) {
      await libp2p.handle(
        MESH_RECORD_PROTOCOL,
        (stream, connection) => this.#serve(stream, connection, datastore),
        {
          maxInboundStreams: this.#init.maxInboundStreams,
          runOnLimitedConnection: true, // reachability (SPEC §10)
        },
      )
    }
    this.#topologyId = await libp2p.register(MESH_RECORD_PROTOCOL, {
      onConnect: (peer, connection) => {
        this.#add(peer)
        // Negotiated now, so a lookup's first request to this neighbour is one round trip.
        if (!this.#channels.has(peer.toString())) this.#open(peer, connection)
      },
      onDisconnect: (peer) => this.#remove(peer),
    })
    // The registrar only tells of peers identified from now on.
    await Promise.all(
      libp2p.getPeers().map(async (peer) => {
        try {
          if ((await libp2p.peerStore.get(peer)).protocols.includes(MESH_RECORD_PROTOCOL)) {
            this.#add(peer)
            if (!this.#channels.has(peer.toString())) this.#open(peer)
          }
        } catch {
          // not in the peer store yet: identify will tell the topology
        }
      }),
    )
  }

  async stop(): Promise<void> {
    if (!this.#running) return
    this.#running = false
    const { libp2p, datastore } = this.#components
    if (this.#topologyId !== undefined) libp2p.unregister(this.#topologyId)
    this.#topologyId = undefined
    if (datastore !== undefined) await libp2p.unhandle(MESH_RECORD_PROTOCOL).catch(() => {})
    for (const channel of this.#channels.values()) channel.close()
    this.#channels.clear()
    this.#neighbours.clear()
    for (const stream of this.#served) stream.abort(new Error('record exchange stopped'))
    this.#served.clear()
  }

  /** Connected neighbours that speak the protocol, right now. */
  get size(): number {
    return this.#neighbours.size
  }

  #add(peer: PeerId): void {
    const id = peer.toString()
    if (!this.#neighbours.has(id))
      this.#neighbours.set(id, { id: peer, kadId: kadIdOf(peer.toMultihash().bytes) })
  }

  #remove(peer: PeerId): void {
    const id = peer.toString()
    this.#neighbours.delete(id)
    this.#channels.get(id)?.close()
    this.#channels.delete(id)
  }

  /**
   * The first answer `parse` takes from the connected neighbours closest to `key`,
   * closest first. One at a time, as a hedged request: the next is asked at once when
   * one has no usable answer, and also when one is slower than a few typical exchanges
   * (so a slow neighbour costs a few round trips, not the lookup), never more than α
   * at a time, at most maxAsked in all.
   */
  async get<T>(key: Uint8Array, options: NeighbourGetOptions<T>): Promise<NeighbourAnswer<T> | undefined> {
    if (!this.#running || !isMeshRecordKey(key)) return undefined
    const { libp2p } = this.#components
    const target = kadIdOf(key)
    const ranked = [...this.#neighbours.values()]
      .filter((n) => libp2p.getConnections(n.id).some((c) => c.status === 'open'))
      .map((n) => ({ n, distance: xor(n.kadId, target) }))
      .sort((a, b) => compare(a.distance, b.distance))
      .slice(0, this.#init.maxAsked)
      .map(({ n }) => n.id)
    if (ranked.length === 0) return undefined
    options.signal?.throwIfAborted()
    return await new Promise<NeighbourAnswer<T> | undefined>((resolve) => {
      let asked = 0
      let inFlight = 0
      let done = false
      let hedge: ReturnType<typeof setTimeout> | undefined
      const finish = (answer: NeighbourAnswer<T> | undefined): void => {
        if (done) return
        done = true
        clearTimeout(hedge)
        options.signal?.removeEventListener('abort', onAbort)
        resolve(answer)
      }
      const onAbort = (): void => finish(undefined)
      options.signal?.addEventListener('abort', onAbort, { once: true })
      const askNext = (): void => {
        if (done) return
        if (asked >= ranked.length) {
          if (inFlight === 0) finish(undefined)
          return
        }
        if (inFlight >= this.#init.alpha) return
        const peer = ranked[asked++] as PeerId
        inFlight++
        clearTimeout(hedge)
        hedge = setTimeout(askNext, this.#hedgeMs())
        const started = performance.now()
        // An exchange is never cut short by the lookup (see #ask); its late answer is dropped.
        this.#ask(peer, key)
          .then(async (value) => {
            this.#exchangeMs = 0.8 * this.#exchangeMs + 0.2 * (performance.now() - started)
            if (done || value === undefined) return
            const parsed = await options.parse(value)
            if (parsed !== undefined) finish({ value: parsed, from: peer, asked })
          })
          .catch((err: unknown) => {
            this.#log.debug(
              { event: 'discovery.neighbour_get_failed', peer: peer.toString(), err: (err as Error).message },
              'neighbour gave no usable answer',
            )
          })
          .finally(() => {
            inFlight--
            askNext()
          })
      }
      askNext()
    })
  }

  /** How long an exchange may take before the next neighbour is asked as well. */
  #hedgeMs(): number {
    return Math.min(Math.max(3 * this.#exchangeMs, 2), 250)
  }

  /**
   * One exchange with `peer` on its kept stream, or on a new one when it is in use,
   * broken or old. A kept stream that fails is replaced once (the server may have just
   * closed it). The lookup's signal never aborts an exchange, so a kept stream is never
   * left with an answer half read; REQUEST_TIMEOUT_MS bounds it.
   */
  async #ask(peer: PeerId, key: Uint8Array): Promise<Uint8Array | undefined> {
    const id = peer.toString()
    const kept = this.#channels.get(id)
    if (kept?.usable() === true) {
      try {
        return await kept.request(key)
      } catch {
        // replaced below (the server may have just closed it)
      }
    }
    const current = this.#channels.get(id)
    if (current?.retired() === true) {
      this.#channels.delete(id)
      current.close()
    }
    const channel = this.#open(peer)
    if (channel === undefined) return undefined
    try {
      return await channel.request(key)
    } finally {
      if (this.#channels.get(id) !== channel) channel.close()
    }
  }

  /**
   * A new stream to `peer`, kept when the neighbour has none (and it is one), else
   * closed by the caller after one exchange.
   */
  #open(peer: PeerId, connection?: Connection): Channel | undefined {
    const { libp2p } = this.#components
    const open = connection ?? libp2p.getConnections(peer).find((c) => c.status === 'open')
    if (open === undefined || !this.#running) return undefined
    const channel = new Channel(open, this.#init.maxAnswerBytes)
    const id = peer.toString()
    if (this.#neighbours.has(id) && !this.#channels.has(id)) this.#channels.set(id, channel)
    return channel
  }

  /** Answers requests in order until the asker closes, goes quiet or asks for something else. */
  async #serve(stream: Stream, connection: Connection, datastore: Datastore): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_KEY_BYTES })
    this.#served.add(stream)
    try {
      for (;;) {
        if (stream.readStatus !== 'readable') break
        const key = (await withTimeout(IDLE_MS, (signal) => lp.read({ signal }))).subarray()
        if (!isMeshRecordKey(key)) throw new Error('not a mesh record key')
        // throws RateLimitError past the peer's budget: the stream ends below
        this.#limiter.consume(connection.remotePeer.toString())
        const value = await heldRecord(datastore, key)
        await withTimeout(REQUEST_TIMEOUT_MS, (signal) => lp.write(value, { signal }))
      }
      await stream.close()
    } catch (err) {
      // EOF after the last answer is how an asker leaves
      if (stream.status === 'open') {
        this.#log.debug(
          {
            event: 'discovery.neighbour_serve_ended',
            peer: connection.remotePeer.toString(),
            err: (err as Error).message,
          },
          'record stream ended',
        )
        stream.abort(err as Error)
      }
    } finally {
      this.#served.delete(stream)
    }
  }
}

/**
 * Runs `op` with a signal that aborts after `ms`. Its timer is cleared when `op` ends:
 * AbortSignal.timeout's would live on for the whole idle time of every request.
 */
async function withTimeout<T>(ms: number, op: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new Error(`no progress in ${ms} ms`)), ms)
  try {
    return await op(controller.signal)
  } finally {
    clearTimeout(timer)
  }
}

/** The value kad-dht holds under `key`, or an empty array; stale as kad-dht judges it. */
async function heldRecord(datastore: Datastore, key: Uint8Array): Promise<Uint8Array> {
  let stored: Uint8Array
  try {
    stored = await datastore.get(dhtRecordKey(key))
  } catch {
    return new Uint8Array(0)
  }
  const record = DhtRecord.deserialize(stored)
  if (Date.now() - record.timeReceived.getTime() > RECORD_VALIDITY_MS) return new Uint8Array(0)
  return record.value
}

/** One record stream to a neighbour, one exchange at a time; usable while it opens. */
class Channel {
  readonly #opening: Promise<LengthPrefixedStream<Stream>>
  #stream: Stream | undefined
  #broken = false
  busy = false
  #idleSince = performance.now()

  constructor(connection: Connection, maxAnswerBytes: number) {
    this.#opening = connection
      .newStream(MESH_RECORD_PROTOCOL, {
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        runOnLimitedConnection: true, // reachability (SPEC §10)
      })
      .then((stream) => {
        this.#stream = stream
        if (this.#broken) stream.close().catch((err: Error) => stream.abort(err))
        return lpStream(stream, { maxDataLength: maxAnswerBytes })
      })
    // a failed open shows in request(); nobody else waits on it
    this.#opening.catch(() => {
      this.#broken = true
    })
  }

  /** Free for an exchange now. */
  usable(): boolean {
    return !this.busy && !this.retired()
  }

  /** Not to be used again: failed, closed, or idle too long. */
  retired(): boolean {
    if (this.#broken) return true
    if (!this.busy && performance.now() - this.#idleSince >= REUSE_MS) return true
    const stream = this.#stream
    return (
      stream !== undefined &&
      (stream.status !== 'open' || stream.writeStatus !== 'writable' || stream.readStatus !== 'readable')
    )
  }

  /** The answer to `key`, or undefined when the neighbour holds none. */
  async request(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.busy = true
    try {
      const lp = await this.#opening
      const answer = await withTimeout(REQUEST_TIMEOUT_MS, async (signal) => {
        await lp.write(key, { signal })
        return (await lp.read({ signal })).subarray()
      })
      this.#idleSince = performance.now()
      this.busy = false
      return answer.byteLength === 0 ? undefined : answer
    } catch (err) {
      // a stream whose exchange failed is not used again
      this.#broken = true
      this.#stream?.abort(err as Error)
      throw err
    }
  }

  close(): void {
    this.#broken = true
    const stream = this.#stream
    stream?.close().catch((err: Error) => stream.abort(err))
  }
}

export function createNeighbourRecords(
  components: NeighbourRecordsComponents,
  init?: NeighbourRecordsInit,
): NeighbourRecords {
  return new NeighbourRecords(components, init)
}
