/**
 * A child process of the DHT lookup benchmark: hosts a few nodes of one network (mesh
 * stacks or stock kad-dht hosts, see nodes.ts) and does what the bench asks over IPC,
 * one request at a time per message id. Timings are taken here, inside the process
 * that runs the looking node, so IPC never counts.
 *
 * Requests `{id, op, ...}`, answers `{id, ok: true, value}` or `{id, ok: false, error}`.
 * On `exit` (or when the IPC channel closes) every node is stopped and the process ends.
 */
import type { KadDHT, QueryEvent, SingleKadDHT } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import {
  createMeshRecord,
  dhtRecordKey,
  encodeMeshRecord,
  type MeshLibp2p,
  meshRecordKey,
  parseMeshRecord,
  validateMeshRecord,
} from '../../src/p2p/index.ts'
import { withTimeout } from './dht-pacing.ts'
import { type BenchNode, type HostLimits, NodePool } from './nodes.ts'

export type Variant = 'mesh' | 'stock'

/** One lookup as the bench records it. */
export interface Sample {
  ok: boolean
  /** Until the lookup had the validated record, ms. */
  ms: number
  /** Mesh side: the whole `discovery.lookup` call, storing the record included. */
  wallMs?: number
  hops?: number
  /** Mesh side: until the record arrived, as the lookup counted it. */
  firstMs?: number
  /** Mesh side: whether a connected neighbour answered or kad-dht's walk did. */
  via?: 'neighbours' | 'dht'
  /** The pings asked for after the lookup, ms each. */
  pingsMs?: number[]
  error?: string
}

export type WorkerRequest =
  | ({ op: 'init'; variant: Variant; count: number } & HostLimits)
  | { op: 'dial'; index: number; addrs: string[]; timeoutMs?: number }
  | { op: 'tableSizes' }
  | { op: 'publish'; index: number; first: boolean; timeoutMs?: number }
  | { op: 'holds'; did: string }
  | {
      op: 'lookup'
      index: number
      did: string
      timeoutMs: number
      /** After the lookup, time `pings` libp2p pings to this node (in another process). */
      ping?: { peerId: string; addrs: string[]; pings: number }
    }
  | { op: 'ping'; index: number; peerId: string; addrs: string[]; count: number }
  | { op: 'connections' }
  | { op: 'stats' }
  | { op: 'exit' }

const pool = new NodePool()
const nodes: BenchNode[] = []
let variant: Variant = 'mesh'
/** Connections opened by or to this process's nodes so far (each counted at both ends). */
let opened = 0

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.op) {
    case 'init': {
      variant = req.variant
      const root = await pool.dir('mesh-bench-dht-')
      // Unlisted meshes (announce: false): records are published as ever, but no
      // directory provide traffic slows the set-up (a round still looks the directory
      // up: one more walk per mesh publish); no round runs on its own while lookups
      // are measured.
      const { maxConnections, connectionMonitor } = req
      const limits: HostLimits = {
        ...(maxConnections !== undefined ? { maxConnections } : {}),
        ...(connectionMonitor !== undefined ? { connectionMonitor } : {}),
      }
      const made = await Promise.all(
        Array.from({ length: req.count }, () =>
          variant === 'mesh'
            ? pool.mesh(root, { intervalMs: 600_000, announce: false, ...limits })
            : pool.stock(limits),
        ),
      )
      nodes.push(...made)
      for (const m of made) m.libp2p.addEventListener('connection:open', () => opened++)
      return nodes.map((node) => ({
        did: node.key.did,
        peerId: node.libp2p.peerId.toString(),
        addrs: node.libp2p.getMultiaddrs().map(String),
      }))
    }
    case 'dial': {
      await node(req.index).libp2p.dial(
        req.addrs.map((a) => multiaddr(a)),
        { signal: AbortSignal.timeout(req.timeoutMs ?? 5_000) },
      )
      return true
    }
    case 'tableSizes':
      return nodes.map((n) => (n.libp2p.services.dht as unknown as SingleKadDHT).routingTable.size)
    case 'connections':
      return nodes.map((n) => n.libp2p.getConnections().length)
    case 'stats': {
      const cpu = process.cpuUsage()
      return {
        cpuMs: (cpu.user + cpu.system) / 1000,
        rssMiB: process.memoryUsage.rss() / 2 ** 20,
        connections: nodes.map((n) => n.libp2p.getConnections().length),
        opened,
      }
    }
    case 'publish':
      return await publish(node(req.index), req.first, req.timeoutMs ?? 60_000)
    case 'holds': {
      const dsKey = dhtRecordKey(meshRecordKey(req.did))
      return nodes.some((n) => n.key.did !== req.did && n.datastore?.has(dsKey) === true)
    }
    case 'lookup': {
      const looker = node(req.index)
      const sample = await lookup(looker, req.did, req.timeoutMs)
      if (req.ping === undefined) return sample
      const { peerId, addrs, pings } = req.ping
      try {
        return { ...sample, pingsMs: await ping(looker, peerId, addrs, pings, 0) }
      } catch {
        return sample // the bound is measured from the other lookups' pings
      }
    }
    case 'ping':
      return await ping(node(req.index), req.peerId, req.addrs, req.count)
    case 'exit':
      await shutdown(0)
      return true
  }
}

function node(index: number): BenchNode {
  const n = nodes[index]
  if (n === undefined) throw new Error(`no node ${index} in this worker`)
  return n
}

/**
 * Publishes the node's signed record; stock: how many peers took it, mesh: -1 (unknown).
 * Past `timeoutMs` it fails (a mesh round goes on in the background).
 */
async function publish(node: BenchNode, first: boolean, timeoutMs: number): Promise<number> {
  if (variant === 'mesh') {
    const round = async (): Promise<void> => {
      // refresh() right after start() runs the first round itself
      if (first) await node.discovery?.start()
      await node.discovery?.refresh()
    }
    await withTimeout(round(), timeoutMs, `publish: the round took over ${timeoutMs} ms`)
    // whether it reached a peer: the bench asks every worker (`holds`)
    return -1
  }
  const record = createMeshRecord(
    node.key,
    {
      name: `bench-${node.key.did.slice(-6).toLowerCase()}`,
      multiaddrs: node.libp2p.getMultiaddrs().map(String),
      protocolVersions: [],
      version: '0.1.0',
      members: 0,
      bots: 0,
      rooms: 0,
    },
    1,
  )
  let reached = 0
  const dht: KadDHT = node.libp2p.services.dht
  for await (const event of dht.put(meshRecordKey(node.key.did), encodeMeshRecord(record), {
    signal: AbortSignal.timeout(timeoutMs),
  })) {
    if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') reached++
  }
  return reached
}

async function lookup(looker: BenchNode, did: string, timeoutMs: number): Promise<Sample> {
  const signal = AbortSignal.timeout(timeoutMs)
  const t0 = performance.now()
  try {
    if (variant === 'mesh') {
      const discovery = looker.discovery
      if (discovery === undefined) throw new Error('mesh node without discovery')
      // What the node does: end the query at the first valid record.
      const result = await discovery.lookup(did, { first: true, signal })
      // Like the stock side, the lookup ends with the validated record; the node then
      // files it in LevelDB (`wallMs` includes that write).
      return {
        ok: result.record.did === did,
        ms: result.ms,
        wallMs: performance.now() - t0,
        ...(result.hops !== undefined ? { hops: result.hops } : {}),
        ...(result.firstMs !== undefined ? { firstMs: result.firstMs } : {}),
        via: result.via,
      }
    }
    const result = await stockLookup(looker.libp2p, did, signal)
    return { ok: result.record.did === did, ms: performance.now() - t0, hops: result.hops }
  } catch (err) {
    return { ok: false, ms: performance.now() - t0, error: (err as Error).message }
  }
}

/**
 * kad-dht's `get` to its end, as a stock node looks a record up; the record it picks
 * must pass our validator. `hops` is counted like MeshDiscovery counts it: the depth of
 * the first peer whose answer carried the record (0 when only the own copy had it).
 */
async function stockLookup(
  libp2p: MeshLibp2p,
  did: string,
  signal: AbortSignal,
): Promise<{ record: ReturnType<typeof parseMeshRecord>; hops: number }> {
  const key = meshRecordKey(did)
  const depth = new Map<string, number>()
  let value: Uint8Array | undefined
  let hops: number | undefined
  const onEvent = (event: QueryEvent): void => {
    if (event.name === 'SEND_QUERY') {
      if (!depth.has(event.to.toString())) depth.set(event.to.toString(), 1)
    } else if (event.name === 'PEER_RESPONSE') {
      const d = depth.get(event.from.toString()) ?? 1
      for (const peer of event.closer)
        if (!depth.has(peer.id.toString())) depth.set(peer.id.toString(), d + 1)
      if (event.record !== undefined && hops === undefined) hops = d
    } else if (event.name === 'VALUE') {
      value = event.value
    }
  }
  for await (const event of libp2p.services.dht.get(key, { signal })) onEvent(event)
  if (value === undefined) throw new Error(`no record for ${did}`)
  await validateMeshRecord(key, value)
  return { record: parseMeshRecord(value), hops: hops ?? 0 }
}

/**
 * Wall times of libp2p pings from `from` to the peer (on an open connection): each
 * opens a new stream (yamux), negotiates the protocol (multistream-select), sends 32
 * bytes and reads them back, as every DHT request does with its message. After
 * `warmup` unmeasured pings (the connection exists: the bench dials it first).
 */
async function ping(
  from: BenchNode,
  peer: string,
  addrs: string[],
  count: number,
  warmup = 20,
): Promise<number[]> {
  const peerId = peerIdFromString(peer)
  await from.libp2p.dial(
    addrs.map((a) => multiaddr(a)),
    { signal: AbortSignal.timeout(5_000) },
  )
  const times: number[] = []
  for (let i = 0; i < warmup + count; i++) {
    // The ping service allows one outbound stream per connection, and closes the last
    // one in the background: a ping right after it may be refused. A refused ping
    // says nothing of the round trip; it is tried again and only a whole one counts.
    for (let attempt = 0; ; attempt++) {
      const t0 = performance.now()
      try {
        await from.libp2p.services.ping.ping(peerId, { signal: AbortSignal.timeout(5_000) })
      } catch (err) {
        if (attempt >= 5) throw err
        await new Promise((resolve) => setTimeout(resolve, 1))
        continue
      }
      if (i >= warmup) times.push(performance.now() - t0)
      break
    }
  }
  return times
}

let exiting = false
async function shutdown(code: number): Promise<void> {
  if (exiting) return
  exiting = true
  await pool.stopAll()
  // libp2p and level may leave timers behind after stop; every node is stopped by now.
  setImmediate(() => process.exit(code))
}

process.on('message', (msg: { id: number } & WorkerRequest) => {
  // The bench may be gone (interrupted) by the time an answer is ready.
  const reply = (answer: { id: number; ok: boolean; value?: unknown; error?: string }): void => {
    if (process.connected) process.send?.(answer)
  }
  handle(msg).then(
    (value) => reply({ id: msg.id, ok: true, value }),
    (err: unknown) => reply({ id: msg.id, ok: false, error: (err as Error).message }),
  )
})
process.on('disconnect', () => void shutdown(0))
process.on('SIGTERM', () => void shutdown(0))
process.on('SIGINT', () => void shutdown(0))
process.send?.({ id: 0, ok: true, value: 'up' })
