import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { autoNAT } from '@libp2p/autonat'
import {
  type CircuitRelayServerComponents,
  type CircuitRelayService,
  circuitRelayTransport,
} from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { type Identify, type IdentifyPush, identify, identifyPush } from '@libp2p/identify'
import type { Libp2p, StreamHandler } from '@libp2p/interface'
import { type KadDHT, type KadDHTComponents, kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Ping, ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import type { Datastore } from 'interface-datastore'
import { createLibp2p } from 'libp2p'
import type { Ed25519KeyPair } from '../identity/index.ts'
import {
  type ConnectionBudget,
  connectionBudget,
  limitClosestPeers,
  meshDhtTable,
  noteAnsweredPings,
} from './connection-budget.ts'
import { MESH_KAD_PROTOCOL } from './constants.ts'
import { lazyWindowUpdates } from './lazy-window-updates.ts' // issue 15 (relay CPU)
import { reuseLimitedConnections } from './limited-reuse.ts' // circuit churn (SPEC §10)
import { MESH_RECORD_NAMESPACE, selectMeshRecord, validateMeshRecord } from './mesh-record.ts'
import { meshNoiseCrypto } from './noise-crypto.ts' // issue 15 (relay CPU)
import {
  meshRelayServer,
  type ReachabilityService,
  type RelayServiceInit,
  reachabilityService,
} from './reachability.ts'
import { RecordGuardDatastore, type RecordGuardInit } from './record-datastore.ts'
// coordination fees (SPEC §10): byte counts on relayed circuits
import { meteredRelayComponents, meteredTransportComponents, RelayMeter } from './relay-meter.ts'

export type MeshServices = {
  identify: Identify
  identifyPush: IdentifyPush
  ping: Ping
  dht: KadDHT
  // reachability (SPEC §10): AutoNAT, DCUtR, the relay service on `--relay` meshes
  autoNAT: unknown
  dcutr: unknown
  reachability: ReachabilityService
  relay?: CircuitRelayService
  // coordination fees (SPEC §10)
  relayMeter: RelayMeter
  // connection budget (issue 15): `mesh` nodes only
  connectionBudget?: ConnectionBudget
}

export type MeshLibp2p = Libp2p<MeshServices>

/**
 * - `mesh`: the node's DHT; records are guarded so a lower-seq record never replaces a
 *   stored higher one (see RecordGuardDatastore).
 * - `stock`: kad-dht's defaults, changed only where it could not work otherwise (our
 *   protocol id and record namespace, server mode, loopback addresses kept) — the
 *   baseline for benchmarks.
 */
export type DhtVariant = 'mesh' | 'stock'

export interface MeshLibp2pInit {
  /** The mesh key: the node's PeerId is this key, so PeerId ⇔ did:key. */
  key: Ed25519KeyPair
  /** Listen multiaddrs; default `['/ip4/127.0.0.1/tcp/0']`. */
  listen?: string[]
  /** Addresses announced instead of the listen addresses (e.g. behind a port forward); default none. */
  announce?: string[]
  /** Default `'mesh'`. */
  dht?: DhtVariant
  /**
   * libp2p's datastore (DHT records, provider records, peer store); default an
   * in-memory RecordGuardDatastore for `mesh`, libp2p's plain in-memory one for `stock`.
   */
  datastore?: Datastore
  /**
   * Connection cap; default 300. A `mesh` node derives its DHT routing table and keep-alive
   * neighbours from it and keeps a quarter of it free for inbound connections (see
   * connection-budget.ts).
   */
  maxConnections?: number
  /**
   * Serve as a circuit relay v2 for meshes that cannot be dialled (SPEC §10): `true` for the
   * defaults (RELAY_SERVICE_DEFAULTS), or limits; default off.
   */
  relay?: boolean | RelayServiceInit
  /** Start the node before returning, as libp2p does; default true. */
  start?: boolean
  // DHT bench at 256 meshes (issue 15): libp2p's liveness ping of every connection
  /**
   * libp2p's connection monitor (a ping on every connection every 10 s, the connection
   * aborted when one fails); default libp2p's. Benchmarks running hundreds of hosts on
   * one machine turn it off.
   */
  connectionMonitor?: { enabled?: boolean; pingInterval?: number }
}

export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/0']
export const DEFAULT_MAX_CONNECTIONS = 300

/** Validators and selectors for our DHT record namespace, as kad-dht takes them. */
export const MESH_DHT_VALIDATORS = { [MESH_RECORD_NAMESPACE]: validateMeshRecord }
export const MESH_DHT_SELECTORS = { [MESH_RECORD_NAMESPACE]: selectMeshRecord }

/** The datastore a `mesh` node uses unless given another; see RecordGuardInit for `persist`. */
export function createMeshDatastore(init: Omit<RecordGuardInit, 'selectors'> = {}): RecordGuardDatastore {
  return new RecordGuardDatastore({ ...init, selectors: MESH_DHT_SELECTORS })
}

/**
 * Builds the node's libp2p host: TCP, WebSockets and circuit relay v2 (client) transports,
 * Noise, Yamux, identify, ping, the mesh kad-dht, AutoNAT, DCUtR, and the relay service
 * when `relay` asks for it.
 */
export async function createMeshLibp2p(init: MeshLibp2pInit): Promise<MeshLibp2p> {
  const variant = init.dht ?? 'mesh'
  const datastore = init.datastore ?? (variant === 'mesh' ? createMeshDatastore() : undefined)
  const guard = datastore instanceof RecordGuardDatastore ? datastore : undefined
  let node: MeshLibp2p | undefined
  const meter = new RelayMeter() // coordination fees (SPEC §10)
  // A peer's own record and provider record stay while it is connected, even when a
  // flood fills the store (see KeyQuota).
  guard?.protect(init.key.peerId().toString(), (peer) => {
    try {
      return (node?.getConnections(peerIdFromString(peer)).length ?? 0) > 0
    } catch {
      return false
    }
  })
  const maxConnections = init.maxConnections ?? DEFAULT_MAX_CONNECTIONS
  // connection budget (issue 15): the table, its keep-alive neighbours and the idle
  // connections kept, all within maxConnections (see connection-budget.ts)
  const table = meshDhtTable(maxConnections)
  const dht = kadDHT({
    protocol: MESH_KAD_PROTOCOL,
    // Every mesh serves the DHT: meshes are reachable servers by design, and
    // auto mode would wait for a public address a LAN or loopback node never has.
    clientMode: false,
    // kad-dht's default drops private and loopback addresses from peer records.
    peerInfoMapper: passthroughMapper,
    validators: MESH_DHT_VALIDATORS,
    selectors: MESH_DHT_SELECTORS,
    // Mesh records are signed and seq-ordered, so a lookup can stop at the first
    // valid answer: a narrow fan-out (classic Kademlia α = 3 over two disjoint paths,
    // against kad-dht's 10 × 10) reaches it sooner and keeps every node's queue short.
    // The table holds at most half of maxConnections (connection budget, issue 15).
    ...(variant === 'mesh'
      ? { alpha: 3, disjointPaths: 2, kBucketSize: table.kBucketSize, prefixLength: table.prefixLength }
      : {}),
  })
  const meshDht =
    variant === 'mesh'
      ? (components: KadDHTComponents) =>
          noteAnsweredPings(limitClosestPeers(dht(components), table.closestPeers))
      : dht
  node = await createLibp2p<MeshServices>({
    start: init.start ?? true,
    privateKey: init.key.toLibp2pPrivateKey(),
    addresses: { listen: init.listen ?? DEFAULT_LISTEN, announce: init.announce ?? [] },
    // reachability (SPEC §10): WebSockets beside TCP; every node dials and listens through relays
    // coordination fees (SPEC §10): the circuit transport's stop streams are counted
    transports: [tcp(), webSockets(), (c) => circuitRelayTransport()(meteredTransportComponents(c, meter))],
    connectionEncrypters: [noise({ crypto: meshNoiseCrypto })], // issue 15 (relay CPU): the cipher by size
    streamMuxers: [lazyWindowUpdates(yamux())], // issue 15 (relay CPU): a window update per half window
    datastore,
    ...(init.connectionMonitor !== undefined ? { connectionMonitor: init.connectionMonitor } : {}), // DHT bench (issue 15)
    connectionManager: {
      maxConnections,
      // libp2p refuses a host opening more than 5 connections a second; a test bed or
      // a LAN runs dozens of meshes behind one address.
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 128,
    },
    services: {
      identify: identify(),
      // Protocols handled after start (record exchange, rooms, connections) reach peers
      // that connected earlier only through a push.
      identifyPush: identifyPush(),
      ping: ping(),
      dht:
        guard === undefined
          ? meshDht
          : (components: KadDHTComponents) => meshDht(withSender(components, guard)),
      // reachability (SPEC §10)
      autoNAT: autoNAT(),
      dcutr: dcutr(),
      reachability: reachabilityService(),
      ...(init.relay !== undefined && init.relay !== false
        ? {
            relay: (c: CircuitRelayServerComponents) =>
              meshRelayServer(typeof init.relay === 'object' ? init.relay : {})(
                meteredRelayComponents(c, meter),
              ),
          }
        : {}),
      relayMeter: () => meter, // coordination fees (SPEC §10)
      ...(variant === 'mesh' ? { connectionBudget: connectionBudget() } : {}), // connection budget (issue 15)
    },
  })
  node.services.reachability.relayService = node.services.relay
  meter.relay = node.services.relay // coordination fees (SPEC §10)
  // circuit churn (SPEC §10): a dial that could only open another circuit reuses the open one
  reuseLimitedConnections(
    (node as unknown as { components: Parameters<typeof reuseLimitedConnections>[0] }).components,
  )
  return node
}

/**
 * kad-dht's components, but its inbound streams are handled inside `guard.asSender`:
 * kad-dht's PUT_VALUE handler writes to the datastore without saying for whom, and
 * the datastore charges each record to the peer that sent it.
 */
function withSender(components: KadDHTComponents, guard: RecordGuardDatastore): KadDHTComponents {
  const { registrar } = components
  const handle: KadDHTComponents['registrar']['handle'] = (protocol, handler, options) =>
    registrar.handle(
      protocol,
      ((stream, connection) =>
        guard.asSender(connection.remotePeer.toString(), () => handler(stream, connection))) as StreamHandler,
      options,
    )
  const wrapped = new Proxy(registrar, {
    get: (target, prop) => (prop === 'handle' ? handle : Reflect.get(target, prop, target)),
  })
  return new Proxy(components, {
    get: (target, prop) => (prop === 'registrar' ? wrapped : Reflect.get(target, prop)),
  })
}
