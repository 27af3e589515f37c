import {
  type CircuitRelayServerComponents,
  type CircuitRelayService,
  type CircuitRelayTransportComponents,
  RELAY_V2_STOP_CODEC,
} from '@libp2p/circuit-relay-v2'
import type { Connection, PeerId, Stream, StreamHandler } from '@libp2p/interface'

/**
 * Coordination fees (SPEC §10), the byte counts both sides sign and check: what crossed
 * the relayed circuits of a beneficiary — the mesh holding the reservation, whose
 * traffic the relay carries.
 *
 * - On a relay, every circuit ends in a `/libp2p/circuit/relay/0.2.0/stop` stream the relay
 *   opens to the beneficiary; the relay counts what that stream carries, both ways:
 *   bytes received as they arrive (the stream's `onData`, before any backpressure) and
 *   bytes sent as the muxer takes them (`sendData`, within the beneficiary's window).
 *   `served(peer)`.
 * - On the beneficiary, the same stream arrives through the circuit transport's stop
 *   handler; it counts the same way, by relay. `relayed(relay)`.
 *
 * A "message" is one chunk either way (a yamux data frame received, a buffer sent): the
 * two sides may chunk differently, so messages are reported, and only bytes are checked.
 * Counts are kept since the host started; a key rotation (a new host) starts them again.
 *
 * The relay side can cut a beneficiary off: its circuits are aborted, its reservation
 * ended, and the connection gater refuses it a new reservation and any circuit to it
 * until `restore`.
 */
export interface TrafficCount {
  bytes: number
  messages: number
  /** Circuits opened. */
  circuits: number
  /** Circuits open now. */
  open: number
  /** When the first circuit was counted (ms since the epoch). */
  since: number
}

interface Cut {
  code: string
  at: number
}

export class RelayMeter {
  readonly #served = new Map<string, TrafficCount>()
  readonly #relayed = new Map<string, TrafficCount>()
  readonly #streams = new Map<string, Set<Stream>>()
  readonly #cut = new Map<string, Cut>()
  /** The relay service, when this host relays (set by the host). */
  relay: CircuitRelayService | undefined
  /** Hears each chunk counted on a relay (peer id of the beneficiary). Must not throw. */
  onServed: ((peer: string) => void) | undefined
  /** Hears each chunk counted on a beneficiary (peer id of the relay). Must not throw. */
  onRelayed: ((relay: string) => void) | undefined

  readonly [Symbol.toStringTag] = 'mesh/relay-meter'

  /** What this relay carried for `peer` (a peer id), or undefined. */
  served(peer: string): TrafficCount | undefined {
    return this.#served.get(peer)
  }

  servedAll(): Array<[string, TrafficCount]> {
    return [...this.#served]
  }

  /** What `relay` (a peer id) carried for this host, or undefined. */
  relayed(relay: string): TrafficCount | undefined {
    return this.#relayed.get(relay)
  }

  relayedAll(): Array<[string, TrafficCount]> {
    return [...this.#relayed]
  }

  /** Counts a stop stream this relay opened to `peer` (the beneficiary). */
  trackServed(peer: string, stream: Stream): void {
    const streams = this.#streams.get(peer) ?? new Set<Stream>()
    this.#streams.set(peer, streams)
    streams.add(stream)
    const count = countOf(this.#served, peer)
    meterStream(stream, count, () => this.onServed?.(peer))
    stream.addEventListener('close', () => {
      streams.delete(stream)
      count.open--
    })
  }

  /** Counts a stop stream `relay` opened to this host. */
  trackRelayed(relay: string, stream: Stream): void {
    const count = countOf(this.#relayed, relay)
    meterStream(stream, count, () => this.onRelayed?.(relay))
    stream.addEventListener('close', () => {
      count.open--
    })
  }

  /** Whether `peer` is cut off, and with what code. */
  cutOff(peer: string): Cut | undefined {
    return this.#cut.get(peer)
  }

  /** Cuts `peer` off: its circuits close, its reservation ends, and it gets no new one. */
  cut(peer: string, code: string, at = Date.now()): void {
    if (!this.#cut.has(peer)) this.#cut.set(peer, { code, at })
    for (const stream of this.#streams.get(peer) ?? [])
      stream.abort(new Error(`${code}: cut off by the relay`))
    this.#streams.delete(peer)
    if (this.relay !== undefined) {
      for (const [id] of this.relay.reservations) {
        if (id.toString() === peer) this.relay.reservations.delete(id)
      }
    }
  }

  /** Serves `peer` again. */
  restore(peer: string): void {
    this.#cut.delete(peer)
  }
}

function countOf(map: Map<string, TrafficCount>, peer: string): TrafficCount {
  let count = map.get(peer)
  if (count === undefined) {
    count = { bytes: 0, messages: 0, circuits: 0, open: 0, since: Date.now() }
    map.set(peer, count)
  }
  count.circuits++
  count.open++
  return count
}

/** The parts of a muxed stream the meter wraps (a yamux stream: `onData` in, `sendData` out to the muxer). */
interface MeteredStream {
  onData?: (data: { byteLength: number }) => void
  sendData?: (data: { byteLength: number }) => { sentBytes: number; canSendMore: boolean }
  send: (data: { byteLength: number }) => boolean
}

/**
 * Counts what `stream` receives (as it arrives) and sends (as the muxer takes it: within
 * the peer's window, not what waits in the write buffer), without changing how it flows.
 */
function meterStream(stream: Stream, count: TrafficCount, onCount: () => void): void {
  const s = stream as unknown as MeteredStream
  const add = (n: number): void => {
    if (n === 0) return
    count.bytes += n
    count.messages++
    onCount()
  }
  const sendData = s.sendData?.bind(s)
  if (sendData !== undefined) {
    s.sendData = (data) => {
      const result = sendData(data)
      add(result.sentBytes)
      return result
    }
  } else {
    const send = s.send.bind(s)
    s.send = (data) => {
      add(data.byteLength)
      return send(data)
    }
  }
  const onData = s.onData?.bind(s)
  if (onData !== undefined) {
    s.onData = (data) => {
      add(data.byteLength)
      onData(data)
    }
  }
}

function protocolsOf(protocols: string | string[]): string[] {
  return Array.isArray(protocols) ? protocols : [protocols]
}

/** Binds a target's methods so that a proxy never calls them on itself (private fields). */
function passThrough<T extends object>(target: T, prop: string | symbol): unknown {
  const value = Reflect.get(target, prop, target)
  return typeof value === 'function' ? value.bind(target) : value
}

/**
 * The relay service's components, seen through the meter: the stop stream it opens to a
 * beneficiary is counted, and the connection gater refuses a cut-off beneficiary a
 * reservation and any circuit to it.
 */
export function meteredRelayComponents(
  components: CircuitRelayServerComponents,
  meter: RelayMeter,
): CircuitRelayServerComponents {
  const { connectionGater, connectionManager } = components
  const gater = new Proxy(connectionGater, {
    get: (target, prop) => {
      if (prop === 'denyInboundRelayReservation')
        return async (peer: PeerId) =>
          meter.cutOff(peer.toString()) !== undefined ||
          (await target.denyInboundRelayReservation?.(peer)) === true
      if (prop === 'denyOutboundRelayedConnection')
        return async (source: PeerId, destination: PeerId) =>
          meter.cutOff(destination.toString()) !== undefined ||
          (await target.denyOutboundRelayedConnection?.(source, destination)) === true
      return passThrough(target, prop)
    },
  })
  const meteredConnection = (connection: Connection): Connection =>
    new Proxy(connection, {
      get: (target, prop) => {
        if (prop !== 'newStream') return passThrough(target, prop)
        const newStream: Connection['newStream'] = async (protocols, options) => {
          const stream = await target.newStream(protocols, options)
          if (protocolsOf(protocols).includes(RELAY_V2_STOP_CODEC))
            meter.trackServed(target.remotePeer.toString(), stream)
          return stream
        }
        return newStream
      },
    })
  const manager = new Proxy(connectionManager, {
    get: (target, prop) => {
      if (prop !== 'getConnections') return passThrough(target, prop)
      return (peer?: PeerId) => target.getConnections(peer).map(meteredConnection)
    },
  })
  return new Proxy(components, {
    get: (target, prop) =>
      prop === 'connectionGater' ? gater : prop === 'connectionManager' ? manager : Reflect.get(target, prop),
  })
}

/** The circuit transport's components, seen through the meter: each stop stream a relay opens here is counted. */
export function meteredTransportComponents(
  components: CircuitRelayTransportComponents,
  meter: RelayMeter,
): CircuitRelayTransportComponents {
  const { registrar } = components
  const handle: CircuitRelayTransportComponents['registrar']['handle'] = (protocol, handler, options) =>
    registrar.handle(
      protocol,
      protocol === RELAY_V2_STOP_CODEC
        ? (((stream, connection) => {
            meter.trackRelayed(connection.remotePeer.toString(), stream)
            return handler(stream, connection)
          }) as StreamHandler)
        : handler,
      options,
    )
  const wrapped = new Proxy(registrar, {
    get: (target, prop) => (prop === 'handle' ? handle : passThrough(target, prop)),
  })
  return new Proxy(components, {
    get: (target, prop) => (prop === 'registrar' ? wrapped : Reflect.get(target, prop)),
  })
}
