import { type CircuitRelayService, circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { isPrivate } from '@libp2p/utils'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { BadRequestError } from '../errors.ts'

/**
 * Limits of the circuit relay v2 service a mesh runs with `--relay` (SPEC §10). A relayed
 * connection is "limited": when a circuit reaches its duration or byte limit the relay
 * resets it, and the next dial opens a new one.
 */
export interface RelayServiceInit {
  /** Reservations held at once (one per hidden mesh); default 64. */
  maxReservations?: number
  /** How long a reservation lasts before its holder must refresh it; default 3 600 000 ms (1 h). */
  reservationTtlMs?: number
  /** How long one relayed connection (circuit) may stay open; default 1 800 000 ms (30 min). */
  circuitDurationMs?: number
  /** Bytes one circuit may carry, both directions together; default 64 MiB. */
  circuitBytes?: number
  /**
   * Circuits (and reservation requests) in flight at once from one peer's connection —
   * the per-peer cap; default 8.
   */
  maxCircuitsPerPeer?: number
}

/** The defaults of RelayServiceInit (libp2p's own are 15 reservations, 2 h, 2 min and 128 KiB). */
export const RELAY_SERVICE_DEFAULTS: Required<RelayServiceInit> = {
  maxReservations: 64,
  reservationTtlMs: 3_600_000,
  circuitDurationMs: 1_800_000,
  circuitBytes: 64 * 1024 * 1024,
  maxCircuitsPerPeer: 8,
}

/** js-libp2p's circuit relay v2 server with the mesh's limits. */
export function meshRelayServer(init: RelayServiceInit = {}): ReturnType<typeof circuitRelayServer> {
  const limits = { ...RELAY_SERVICE_DEFAULTS, ...init }
  return circuitRelayServer({
    maxInboundHopStreams: limits.maxCircuitsPerPeer,
    reservations: {
      maxReservations: limits.maxReservations,
      reservationTtl: limits.reservationTtlMs,
      applyDefaultLimit: true,
      // The relay times a circuit in milliseconds (utils.js createLimitedRelay).
      defaultDurationLimit: limits.circuitDurationMs,
      defaultDataLimit: BigInt(limits.circuitBytes),
    },
  })
}

/** The listen address that takes a reservation on the relay at `relay` (`…/p2p/<relay peer id>`). */
export function relayListenAddress(relay: string): string {
  const ma = multiaddr(relay)
  if (!ma.getComponents().some((c) => c.name === 'p2p')) {
    throw new BadRequestError(`relay address ${relay} must end with /p2p/<peer id>`, { relay })
  }
  return `${ma.toString()}/p2p-circuit`
}

/** Whether `address` goes through a relay (`…/p2p-circuit/…`). */
export function isRelayAddress(address: string): boolean {
  return address.includes('/p2p-circuit')
}

/**
 * How a mesh can be reached (SPEC §10), as `GET /api/health` could report it:
 * - `public`: AutoNAT confirmed a direct address from other peers;
 * - `relayed`: it holds reservations on relays and its relay addresses are announced;
 * - `unknown`: neither (a LAN or loopback node: AutoNAT never tests private addresses).
 */
export interface Reachability {
  status: 'public' | 'relayed' | 'unknown'
  /** Its addresses through relays. */
  relayAddresses: string[]
  /** Direct addresses other peers dialled back (AutoNAT). */
  verifiedAddresses: string[]
  /** Whether it serves as a relay (`--relay`). */
  relay: boolean
  /** Meshes holding a reservation on it, when it relays. */
  reservations: number
}

/** The part of libp2p's (internal) address manager the service reads. */
interface ReachabilityComponents {
  addressManager: {
    getAddresses(): Multiaddr[]
    getAddressesWithMetadata(): Array<{ multiaddr: Multiaddr; verified: boolean; type: string }>
  }
}

/** A service on the host that reads its address manager: which addresses are verified, which relayed. */
export class ReachabilityService {
  readonly #components: ReachabilityComponents
  /** Set by the host when it runs the relay service. */
  relayService: CircuitRelayService | undefined

  constructor(components: ReachabilityComponents) {
    this.#components = components
  }

  readonly [Symbol.toStringTag] = 'mesh/reachability'

  status(): Reachability {
    const addresses = this.#components.addressManager.getAddressesWithMetadata()
    const relayAddresses = this.#components.addressManager.getAddresses().map(String).filter(isRelayAddress)
    const verifiedAddresses = addresses
      .filter(
        (a) =>
          a.verified &&
          a.type !== 'announce' &&
          !isPrivate(a.multiaddr) &&
          !isRelayAddress(a.multiaddr.toString()),
      )
      .map((a) => a.multiaddr.toString())
    const relay = this.relayService
    return {
      status: verifiedAddresses.length > 0 ? 'public' : relayAddresses.length > 0 ? 'relayed' : 'unknown',
      relayAddresses,
      verifiedAddresses,
      relay: relay !== undefined,
      reservations: relay?.reservations.size ?? 0,
    }
  }
}

export function reachabilityService(): (components: ReachabilityComponents) => ReachabilityService {
  return (components) => new ReachabilityService(components)
}
