/**
 * A node's connection budget (issue 15, the mesh DHT at scale): the DHT's routing table,
 * its keep-alive neighbours and the connections kept open, all derived from the host's
 * `maxConnections`, so that a network larger than the budget still works.
 *
 * Why: libp2p refuses every inbound connection once a node holds `maxConnections`, and
 * prunes only above it, and only connections with no stream outside a short list — but
 * every mesh keeps a record-exchange stream open on each DHT connection (NeighbourRecords),
 * so nothing was ever pruned. kad-dht's table (2^6 buckets × 20 = 1,280 contacts) pings,
 * hence connects to, every peer it takes while it has room, and keeps its 20 closest peers
 * connected (a keep-alive tag: libp2p dials them again whenever they drop). In a network
 * larger than the budget every node sat at its limit, refused the pings of others, and
 * walks and routing tables broke.
 *
 * Now (see `meshDhtTable` and ConnectionBudget):
 * - the routing table holds at most half the budget: kad-dht's k = 20 kept down to a budget
 *   of 40 (then half the budget, at least 4), and the trie only as deep as fits; a full
 *   table pings no new contact, and notes the old ones that answered its pings
 *   (`noteAnsweredPings`), so the pings stop once it is full;
 * - at most a quarter of the budget are keep-alive neighbours (`limitClosestPeers`);
 * - ConnectionBudget closes idle connections — spare duplicates of a simultaneous dial
 *   first, then the least value (libp2p's peer tags) — as soon as the node holds more
 *   than its low-water mark (three quarters of the budget), so there is always room for
 *   an inbound connection, and walks that dial across the network leave no residue.
 */
import type {
  ComponentLogger,
  Connection,
  Libp2pEvents,
  Logger,
  PeerId,
  PeerStore,
  Startable,
  TypedEventTarget,
} from '@libp2p/interface'
import { KEEP_ALIVE } from '@libp2p/interface'
import { MESH_RECORD_PROTOCOL } from './constants.ts'

/** A spare duplicate connection this old is closed (its dialler had time to use it). */
const DUPLICATE_GRACE_MS = 2_000
/** kad-dht's defaults: k, and the deepest trie (2^6 × 20 = 1,280 contacts). */
const KAD_K = 20
const KAD_MAX_PREFIX_LENGTH = 6
/** kad-dht keeps this many closest peers connected (ClosestPeers, not an option of kadDHT()). */
const KAD_CLOSEST_PEERS = 20

/** The DHT's share of a connection budget. */
export interface MeshDhtTable {
  /** kad-dht's `kBucketSize`: contacts per bucket, peers per answer, replicas per record. */
  kBucketSize: number
  /** kad-dht's `prefixLength`: the table holds at most 2^prefixLength × kBucketSize contacts. */
  prefixLength: number
  /** Closest peers kad-dht keeps connected (tagged keep-alive). */
  closestPeers: number
}

/**
 * The routing table for a node allowed `maxConnections`: at most half the budget in the
 * table (`capacity(table) ≤ maxConnections / 2`), at most a quarter kept alive. 300 (the
 * node's default): k 20, prefix 2 (80 contacts), 20 kept alive; 16: k 8, prefix 0 (8), 4.
 */
export function meshDhtTable(maxConnections: number): MeshDhtTable {
  const half = Math.max(1, Math.floor(maxConnections / 2))
  const kBucketSize = Math.min(KAD_K, Math.max(4, half))
  let prefixLength = 0
  while (prefixLength < KAD_MAX_PREFIX_LENGTH && 2 ** (prefixLength + 1) * kBucketSize <= half) prefixLength++
  const closestPeers = Math.min(KAD_CLOSEST_PEERS, Math.max(2, Math.floor(maxConnections / 4)))
  return { kBucketSize, prefixLength, closestPeers }
}

/** How many contacts a table holds at most. */
export function tableCapacity(table: Pick<MeshDhtTable, 'kBucketSize' | 'prefixLength'>): number {
  return 2 ** table.prefixLength * table.kBucketSize
}

/**
 * Streams that do not make a connection busy: libp2p's own closable list (identify,
 * identify push, AutoNAT, DCUtR) and the record exchange's kept stream (idle between
 * lookups for up to ten minutes). A DHT request or ping (kad-dht's check before its table
 * takes a peer), a room, a mailbox or a federation stream keeps its connection open.
 */
export const IDLE_PROTOCOLS: ReadonlySet<string> = new Set([
  '/ipfs/id/1.0.0',
  '/ipfs/id/push/1.0.0',
  '/libp2p/autonat/1.0.0',
  '/libp2p/dcutr',
  MESH_RECORD_PROTOCOL,
])

export interface ConnectionBudgetInit {
  /**
   * Above this many connections the least valuable idle ones are closed; default three
   * quarters of the host's `maxConnections` (where libp2p starts refusing inbound ones).
   */
  lowWater?: number
  /**
   * A connection younger than this is left alone (a walk that just dialled it is using
   * it) unless the node is near its limit; default 10 000 ms.
   */
  graceMs?: number
  /** How often the count is checked besides on every new connection; default 5 000 ms. */
  intervalMs?: number
}

export interface ConnectionBudgetComponents {
  peerId: PeerId
  connectionManager: { getConnections(): Connection[]; getMaxConnections(): number }
  peerStore: Pick<PeerStore, 'get'>
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

/**
 * Keeps a node's connections at or below its low-water mark by closing idle connections
 * of the least value, so an inbound connection (another node's DHT ping or walk) finds
 * room. Never closes a connection with a busy stream (see IDLE_PROTOCOLS) or to a peer
 * tagged keep-alive (kad-dht's closest neighbours; libp2p would dial them again).
 */
export class ConnectionBudget implements Startable {
  readonly #components: ConnectionBudgetComponents
  readonly #init: ConnectionBudgetInit
  readonly #log: Logger
  #timer: ReturnType<typeof setInterval> | undefined
  #scheduled = false
  #trimming: Promise<void> | undefined
  #running = false
  /** Connections closed so far (metrics, tests). */
  closed = 0

  constructor(components: ConnectionBudgetComponents, init: ConnectionBudgetInit = {}) {
    this.#components = components
    this.#init = init
    this.#log = components.logger.forComponent('mesh:connection-budget')
  }

  readonly [Symbol.toStringTag] = 'ConnectionBudget'

  /** Above this the node trims. */
  get lowWater(): number {
    const max = this.#components.connectionManager.getMaxConnections()
    return Math.min(max - 1, this.#init.lowWater ?? Math.max(1, Math.floor((max * 3) / 4)))
  }

  start(): void {
    this.#running = true
    this.#components.events.addEventListener('connection:open', this.#onOpen)
    this.#timer = setInterval(() => this.#schedule(), this.#init.intervalMs ?? 5_000)
    this.#timer.unref?.()
  }

  async stop(): Promise<void> {
    this.#running = false
    this.#components.events.removeEventListener('connection:open', this.#onOpen)
    clearInterval(this.#timer)
    await this.#trimming
  }

  readonly #onOpen = (): void => this.#schedule()

  #schedule(): void {
    if (!this.#running || this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      if (this.#trimming !== undefined || !this.#running) return
      this.#trimming = this.trim()
        .catch((err: unknown) => this.#log.error('trimming connections failed - %e', err))
        .finally(() => {
          this.#trimming = undefined
        })
    })
  }

  /** Closes what is over the low-water mark now; resolves when those connections are closed. */
  async trim(): Promise<void> {
    const { connectionManager, peerStore } = this.#components
    const connections = connectionManager.getConnections().filter((c) => c.status === 'open')
    const lowWater = this.lowWater
    if (connections.length <= lowWater) return
    const max = connectionManager.getMaxConnections()
    const graceMs = this.#init.graceMs ?? 10_000
    const values = new Map<string, number>()
    for (const connection of connections) {
      const peer = connection.remotePeer.toString()
      if (values.has(peer)) continue
      values.set(peer, await peerValue(peerStore, connection))
    }
    const spare = spareConnections(connections, this.#components.peerId.toString())
    const rank = (c: Connection): number =>
      spare.has(c) ? Number.NEGATIVE_INFINITY : (values.get(c.remotePeer.toString()) ?? 0)
    const now = Date.now()
    // Spare duplicates first, then the least value, then the longest open (a new one is
    // likely in use right now); keep-alive peers only lose a spare duplicate.
    const idle = connections
      .filter((c) => rank(c) !== Number.POSITIVE_INFINITY && isIdle(c))
      .sort((a, b) => rank(a) - rank(b) || a.timeline.open - b.timeline.open)
    const chosen = idle
      .filter((c) => now - c.timeline.open >= (spare.has(c) ? DUPLICATE_GRACE_MS : graceMs))
      .slice(0, connections.length - lowWater)
    // Near the limit (where libp2p refuses inbound connections) young idle ones go too,
    // down to halfway between the low-water mark and the limit.
    const ceiling = max - Math.max(1, Math.floor((max - lowWater) / 2))
    if (connections.length - chosen.length > ceiling) {
      const more = idle.filter((c) => !chosen.includes(c))
      chosen.push(...more.slice(0, connections.length - chosen.length - ceiling))
    }
    if (chosen.length === 0) return
    this.#log('%d connections over %d: closing %d idle ones', connections.length, lowWater, chosen.length)
    this.closed += chosen.length
    await Promise.all(
      chosen.map(async (connection) => {
        try {
          await connection.close({ signal: AbortSignal.timeout(1_000) })
        } catch (err) {
          connection.abort(err as Error)
        }
      }),
    )
  }
}

/**
 * A simultaneous dial leaves two connections between the same peers. Both ends keep the
 * same one — the oldest dialled by the smaller peer id, else the oldest — and the others
 * are spare.
 */
function spareConnections(connections: Connection[], self: string): Set<Connection> {
  const byPeer = new Map<string, Connection[]>()
  for (const c of connections) {
    const peer = c.remotePeer.toString()
    byPeer.set(peer, [...(byPeer.get(peer) ?? []), c])
  }
  const spare = new Set<Connection>()
  for (const [peer, list] of byPeer) {
    if (list.length < 2) continue
    const dialledBySmaller = self < peer ? 'outbound' : 'inbound'
    const sorted = [...list].sort(
      (a, b) =>
        Number(b.direction === dialledBySmaller) - Number(a.direction === dialledBySmaller) ||
        a.timeline.open - b.timeline.open,
    )
    for (const c of sorted.slice(1)) spare.add(c)
  }
  return spare
}

/** A connection with no stream beyond IDLE_PROTOCOLS. */
function isIdle(connection: Connection): boolean {
  return connection.streams.every((s) => s.protocol === undefined || IDLE_PROTOCOLS.has(s.protocol))
}

/** The sum of the peer's tag values (as libp2p's pruner counts them); keep-alive: never closed. */
async function peerValue(peerStore: Pick<PeerStore, 'get'>, connection: Connection): Promise<number> {
  try {
    const peer = await peerStore.get(connection.remotePeer)
    let value = 0
    for (const [name, tag] of peer.tags) {
      if (name.startsWith(KEEP_ALIVE)) return Number.POSITIVE_INFINITY
      value += tag.value
    }
    return value
  } catch {
    return 0
  }
}

/** A libp2p service factory: `services: { connectionBudget: connectionBudget() }`. */
export function connectionBudget(
  init: ConnectionBudgetInit = {},
): (components: ConnectionBudgetComponents) => ConnectionBudget {
  return (components) => new ConnectionBudget(components, init)
}

/**
 * Sets how many closest peers kad-dht keeps connected (its ClosestPeers set, fixed at 20:
 * kadDHT() takes no option for it). Call before the DHT starts; a kad-dht without that
 * field is returned untouched.
 */
export function limitClosestPeers<T>(dht: T, count: number): T {
  const tagger = (dht as { routingTable?: { closestPeerTagger?: { peerSetSize?: number } } }).routingTable
    ?.closestPeerTagger
  if (typeof tagger?.peerSetSize === 'number') tagger.peerSetSize = count
  return dht
}

interface KadContact {
  lastPing: number
}
interface KadBucketTrie {
  ping?: (contacts: KadContact[], options?: unknown) => AsyncGenerator<KadContact>
}

/**
 * kad-dht (16.4) pings the oldest contacts of a full bucket when a new peer would fit in
 * it, and evicts those that do not answer; but it never notes that the others did answer,
 * so once they are ten minutes old every new peer heard of pings (dials, on a budget) the
 * same contacts again. This notes the answer, as Kademlia does: a contact that answered
 * is not pinged again for ten minutes. A kad-dht without that trie is returned untouched.
 */
export function noteAnsweredPings<T>(dht: T): T {
  const kb = (dht as { routingTable?: { kb?: KadBucketTrie } }).routingTable?.kb
  const ping = kb?.ping
  if (kb === undefined || typeof ping !== 'function') return dht
  kb.ping = async function* (contacts, options) {
    const evicted = new Set<KadContact>()
    for await (const contact of ping(contacts, options)) {
      evicted.add(contact)
      yield contact
    }
    const now = Date.now()
    for (const contact of contacts) if (!evicted.has(contact)) contact.lastPing = now
  }
  return dht
}
