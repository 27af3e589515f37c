import type { Registry } from 'prom-client'
import { MESH_NODE_VERSION } from '../config.ts'
import { UnavailableError } from '../errors.ts'
import { type Ed25519KeyPair, readRetiredKey } from '../identity/index.ts'
import {
  createMeshDatastore,
  createMeshDiscovery,
  createMeshLibp2p,
  type MeshDiscovery,
  type MeshLibp2p,
  type MeshProfile,
  relayListenAddress,
} from '../p2p/index.ts'
import { createRegistryBootstrap, HeartbeatClient, RegistryService } from '../registry/index.ts'
import type { NodeWiring } from './parts.ts'

/** What runs on the mesh key besides the host: discovery and the heartbeat publish what the node counts. */
export interface NetworkWiring extends NodeWiring {
  metrics: Registry
  multiaddrs: () => string[]
  protocolVersions: () => string[]
  /** Members, bots and rooms, as the mesh record and the heartbeat publish them. */
  counts: () => Promise<{ members: number; bots: number; rooms: number }>
  /** reachable by URL (SPEC §10): what the record and the heartbeat say of the mesh beyond its addresses. */
  profile?: () => MeshProfile
}

type Datastore = ReturnType<typeof createMeshDatastore>

/** The libp2p host on the current key, over a datastore loaded from the store. */
export async function startHost(wiring: NetworkWiring): Promise<void> {
  const { parts, init } = wiring
  const datastore = await openDatastore(wiring)
  // After libp2p has stopped (the stack unwinds in reverse): its last DHT writes reach disk.
  parts.onStop(async () => parts.find('datastore')?.flush())
  const listen = withRelays(init.listen ?? ['/ip4/127.0.0.1/tcp/0'], init.relayVia) // reachability (SPEC §10)
  // Held by name: a key rotation replaces the host (and discovery, heartbeat) under way.
  parts.hold(
    'libp2p',
    // issue 14: announced addresses (a public name, a port forward) instead of the listen ones
    await createMeshLibp2p({
      key: parts.get('key'),
      listen,
      datastore,
      announce: init.announce ?? [],
      ...(init.relay !== undefined ? { relay: init.relay } : {}), // reachability (SPEC §10)
      ...maxConnectionsOf(init), // connection budget (issue 15)
    }).catch((err: unknown) => {
      throw relayUnreachable(err) ?? err // reachability (SPEC §10)
    }),
  )
}

/** The registry this node serves, when it serves one. */
export async function startRegistry({ parts, init, logger, metrics }: NetworkWiring): Promise<void> {
  if (init.serveRegistry !== true) return
  const { perSource: _, ...limits } = init.registry ?? {}
  const registry = new RegistryService({
    store: parts.get('store'),
    logger,
    heartbeatIntervalMs: init.heartbeat?.intervalMs ?? 30_000,
    metrics,
    ...limits,
  })
  await parts.add('registry', registry)
}

export async function startDiscovery(wiring: NetworkWiring): Promise<void> {
  const { parts } = wiring
  await parts.add(
    'discovery',
    createDiscovery(wiring, parts.get('libp2p'), parts.get('key'), parts.get('datastore')),
  )
}

/** The registry heartbeat, when this mesh is public and names a registry. */
export async function startHeartbeat(wiring: NetworkWiring): Promise<void> {
  const heartbeat = createHeartbeat(wiring, wiring.parts.get('key'))
  if (heartbeat !== undefined) await wiring.parts.add('heartbeat', heartbeat)
}

/**
 * Stops what runs on the old key (heartbeat, connection service, room sync, discovery,
 * then the libp2p host) and starts it again on `key`, on the same listen addresses, in
 * dependency order. Components that register libp2p protocols or sign with the mesh
 * key belong in this list. `whileStopped` runs once the services that send are stopped.
 */
export async function restartOnKey(
  wiring: NetworkWiring,
  key: Ed25519KeyPair,
  whileStopped: () => Promise<void>,
): Promise<void> {
  const { parts, init } = wiring
  // The addresses bound (with the ports picked); announced ones are not, so then the configured ones.
  const listen =
    (init.announce ?? []).length > 0
      ? (init.listen ?? [])
      : wiring.multiaddrs().map((a) => a.replace(/\/p2p\/[^/]+$/, ''))
  await parts.find('heartbeat')?.stop()
  await parts.find('connections')?.stop()
  await parts.find('roomSync')?.stop()
  await parts.find('outbound')?.stop() // outbound invocation over libp2p
  await parts.find('auditProtocol')?.stop() // accountability across meshes (SPEC §11)
  await parts.find('mailbox')?.stop() // store and forward (SPEC §10)
  await parts.find('mailboxRelay')?.stop() // store and forward (SPEC §10)
  await parts.find('fees')?.stop() // coordination fees (SPEC §10)
  await parts.find('filesProtocol')?.stop() // files in rooms (issue 18)
  await whileStopped()
  await parts.find('discovery')?.stop()
  await parts.find('libp2p')?.stop()
  await parts.find('datastore')?.flush()
  const datastore = await openDatastore(wiring)
  const libp2p = await createMeshLibp2p({
    key,
    // reachability (SPEC §10): the relays it was told of, even while no reservation stands
    listen: withRelays(listen.length > 0 ? listen : (init.listen ?? []), init.relayVia),
    datastore,
    announce: init.announce ?? [], // issue 14
    ...(init.relay !== undefined ? { relay: init.relay } : {}), // reachability (SPEC §10)
    ...maxConnectionsOf(init), // connection budget (issue 15)
  })
  parts.set('libp2p', libp2p)
  const discovery = createDiscovery(wiring, libp2p, key, datastore)
  await discovery.start()
  parts.set('discovery', discovery)
  await parts.find('connections')?.start()
  await parts.find('roomSync')?.start()
  await parts.find('outbound')?.start() // outbound invocation over libp2p
  await parts.find('auditProtocol')?.start() // accountability across meshes (SPEC §11)
  await parts.find('mailboxRelay')?.start() // store and forward (SPEC §10)
  await parts.find('mailbox')?.start() // store and forward (SPEC §10)
  await parts.find('fees')?.start() // coordination fees (SPEC §10)
  await parts.find('filesProtocol')?.start() // files in rooms (issue 18)
  const heartbeat = createHeartbeat(wiring, key)
  if (heartbeat !== undefined) {
    await heartbeat.start()
    parts.set('heartbeat', heartbeat)
  }
}

/**
 * libp2p's datastore, holding in memory the DHT records and provider records this node
 * keeps for the network, written through to the store's `dht` sublevel so that a
 * restart keeps them (and the directory) too.
 */
async function openDatastore({ parts, init, logger }: NodeWiring): Promise<Datastore> {
  const datastore = createMeshDatastore({
    ...init.dht,
    persist: parts.get('store').sublevel<string>('dht'),
    logger,
  })
  const loaded = await datastore.load()
  logger.debug({ event: 'dht.loaded', keys: loaded, records: datastore.records }, 'DHT keys loaded')
  return parts.set('datastore', datastore)
}

function createDiscovery(
  wiring: NetworkWiring,
  libp2p: MeshLibp2p,
  key: Ed25519KeyPair,
  datastore: Datastore,
): MeshDiscovery {
  const { parts, init } = wiring
  const info = parts.get('info')
  return createMeshDiscovery(
    { libp2p, key, store: parts.get('store'), logger: wiring.logger, datastore },
    {
      name: info.name,
      version: MESH_NODE_VERSION,
      protocolVersions: wiring.protocolVersions(),
      intervalMs: init.discovery?.intervalMs ?? 10_000,
      bootstrap: init.bootstrap ?? [],
      ...(init.registryUrl !== undefined
        ? { registry: createRegistryBootstrap({ registryUrl: init.registryUrl, logger: wiring.logger }) }
        : {}),
      announce: init.public === true,
      content: async () => ({ ...(await wiring.counts()), ...wiring.profile?.() }), // + SPEC §10 profile
      keys: async () => {
        const history = parts.find('history')
        if (history === undefined || history.records.length === 0) return undefined
        const retired = await Promise.all(
          history.keys.slice(0, -1).map((did) => readRetiredKey(init.dataDir, did)),
        )
        return { record: { identity: history.identity, rotations: history.records }, retired }
      },
    },
  )
}

function createHeartbeat(wiring: NetworkWiring, key: Ed25519KeyPair): HeartbeatClient | undefined {
  const { parts, init } = wiring
  if (init.public !== true || init.registryUrl === undefined) return undefined
  return new HeartbeatClient({
    registryUrl: init.registryUrl,
    key,
    store: parts.get('store'),
    logger: wiring.logger,
    intervalMs: init.heartbeat?.intervalMs ?? 30_000,
    content: async () => ({
      name: parts.get('info').name,
      multiaddrs: wiring.multiaddrs(),
      protocolVersions: wiring.protocolVersions(),
      version: MESH_NODE_VERSION,
      ...(await wiring.counts()),
      ...wiring.profile?.(), // reachable by URL (SPEC §10)
    }),
    rotations: () => parts.find('history')?.records,
    healthy: () => parts.find('storeMonitor')?.health.status !== 'unhealthy',
  })
}

// reachability (SPEC §10)
/** `listen`, plus a reservation address for each relay in `relayVia` not already in it. */
function withRelays(listen: string[], relayVia: string[] | undefined): string[] {
  const out = [...listen]
  for (const relay of relayVia ?? []) {
    const address = relayListenAddress(relay)
    if (!out.includes(address)) out.push(address)
  }
  return out
}

/**
 * A relay named by `--relay-via` that cannot be reached at start: MESH_UNAVAILABLE naming it
 * (the node was asked to be reached through it, so it does not start unreachable).
 */
function relayUnreachable(err: unknown): Error | undefined {
  const message = String((err as Error | undefined)?.message)
  if ((err as Error | undefined)?.name !== 'UnsupportedListenAddressesError') return undefined
  if (/EADDRINUSE/.test(message)) return undefined
  const relays = [...message.matchAll(/^\s*(\S+)\/p2p-circuit:/gm)].map((m) => m[1] as string)
  if (relays.length === 0) return undefined
  return new UnavailableError(`no reservation could be taken on relay ${relays.join(', ')}`, { relays })
}

// connection budget (issue 15)
/** The host's connection cap, when the node was given one. */
export function maxConnectionsOf(init: { maxPeerConnections?: number }): { maxConnections?: number } {
  return init.maxPeerConnections !== undefined ? { maxConnections: init.maxPeerConnections } : {}
}
