/**
 * DHT lookup latency, hops and success for N meshes on loopback, side by side with the
 * same lookups on N hosts with the stock kad-dht configuration.
 *
 * Mesh side: N in-process mesh stacks whose discovery publishes their signed records;
 * a lookup is what the node does, `discovery.lookup(did, {first: true})`. Stock side:
 * N `dht: 'stock'` hosts, each putting the same kind of signed record; a lookup is
 * kad-dht's `get` run to its end (then validated). Both run the same (looker, target)
 * pairs one at a time, after 16 unmeasured warm-up lookups. The loopback round trip
 * is the median wall time of a libp2p ping (stream open included, as in every DHT
 * request) between two nodes of the mesh network.
 *
 * All N nodes of a side share this process's one event loop, so a query fanned out to
 * many peers costs its latency the CPU of every request and response it makes.
 */
import type { KadDHT, QueryEvent } from '@libp2p/kad-dht'
import { Key } from 'interface-datastore'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import {
  createMeshRecord,
  encodeMeshRecord,
  type MeshLibp2p,
  meshRecordKey,
  parseMeshRecord,
  validateMeshRecord,
} from '../../src/p2p/index.ts'
import { type BenchNode, connect, forEachLimited, NodePool } from './nodes.ts'
import { emit, median, note, percentile, type ResultName, sleep } from './report.ts'

export interface DhtLookupInit {
  /** Number of nodes in each network. */
  n: number
  /** Measured lookups (random looker → other mesh pairs); default 200. */
  lookups?: number
  /** Per lookup; a lookup that takes longer is a failure; default 10 000. */
  timeoutMs?: number
  /** Pings for the loopback round trip; default 300. */
  pings?: number
}

/** The results `benchDhtLookup` writes for `n`. */
export function dhtLookupNames(n: number): ResultName[] {
  return [
    { name: `dht.lookup_p50_ms.n${n}`, unit: 'ms', better: 'lower' },
    { name: `dht.lookup_p90_ms.n${n}`, unit: 'ms', better: 'lower' },
    { name: `dht.lookup_hops_p50.n${n}`, unit: 'hops', better: 'lower' },
    { name: `dht.lookup_success.n${n}`, unit: 'fraction', better: 'higher' },
    { name: `dht.lookup_p90_vs_rtt_bound.n${n}`, unit: 'ms', better: 'lower' },
  ]
}

interface Sample {
  ok: boolean
  /** Wall time of the whole lookup call. */
  ms: number
  hops?: number
  /** Mesh side: until the record arrived, as the lookup counted it. */
  firstMs?: number
}

interface Side {
  samples: Sample[]
  /** Mesh side only: median libp2p ping between two of its nodes, ms. */
  rttMs?: number
  /** Mesh side only: share of the pairs whose target record some other node holds. */
  stored?: number
}

export async function benchDhtLookup(init: DhtLookupInit): Promise<void> {
  const { n } = init
  const lookups = init.lookups ?? 200
  const pairs = Array.from({ length: lookups }, () => {
    const looker = Math.floor(Math.random() * n)
    const target = (looker + 1 + Math.floor(Math.random() * (n - 1))) % n
    return [looker, target] as const
  })
  const mesh = await runSide(n, 'mesh', pairs, init)
  const stock = await runSide(n, 'stock', pairs, init)

  const summary = (side: Side) => {
    const ok = side.samples.filter((s) => s.ok)
    const ms = ok.map((s) => s.ms)
    const hops = ok.flatMap((s) => (s.hops === undefined ? [] : [s.hops]))
    return {
      p50: percentile(ms, 50),
      p90: percentile(ms, 90),
      hops: percentile(hops, 50),
      success: ok.length / side.samples.length,
    }
  }
  const ours = summary(mesh)
  const theirs = summary(stock)
  note(
    `n${n}: mesh p50 ${ours.p50.toFixed(2)} p90 ${ours.p90.toFixed(2)} ms hops ${ours.hops} success ${ours.success}` +
      ` | stock p50 ${theirs.p50.toFixed(2)} p90 ${theirs.p90.toFixed(2)} ms hops ${theirs.hops} success ${theirs.success}` +
      ` | rtt ${mesh.rttMs?.toFixed(3)} ms, records stored ${mesh.stored}`,
  )
  const value = (x: number): number | null => (Number.isFinite(x) ? x : null)
  emit(`dht.lookup_p50_ms.n${n}`, value(ours.p50), 'ms', value(theirs.p50), 1, 'lower')
  emit(`dht.lookup_p90_ms.n${n}`, value(ours.p90), 'ms', value(theirs.p90), 1, 'lower')
  emit(`dht.lookup_hops_p50.n${n}`, value(ours.hops), 'hops', value(theirs.hops), 1, 'lower')
  // The limit: a lookup can only succeed for a record some node other than its owner holds.
  emit(`dht.lookup_success.n${n}`, ours.success, 'fraction', mesh.stored ?? null, 1, 'higher')
  const bound =
    mesh.rttMs !== undefined && Number.isFinite(ours.hops)
      ? 2 * Math.max(ours.hops, 1) * mesh.rttMs
      : Number.NaN
  emit(`dht.lookup_p90_vs_rtt_bound.n${n}`, value(ours.p90), 'ms', value(bound), 1, 'lower')
}

async function runSide(
  n: number,
  variant: 'mesh' | 'stock',
  pairs: ReadonlyArray<readonly [number, number]>,
  init: DhtLookupInit,
): Promise<Side> {
  const pool = new NodePool()
  const timeoutMs = init.timeoutMs ?? 10_000
  try {
    const started = performance.now()
    const root = await pool.dir('mesh-bench-dht-')
    const nodes: BenchNode[] = []
    // Unlisted meshes (announce: false): records are published as ever, but no
    // directory provide/lookup traffic slows the set-up. One discovery round at start
    // (and the retries below), none while lookups are measured.
    for (let i = 0; i < n; i++) {
      nodes.push(
        variant === 'mesh'
          ? await pool.mesh(root, { intervalMs: 600_000, announce: false })
          : await pool.stock(),
      )
    }
    await connect(nodes)
    // Both sides publish 8 at a time, and again (as a node does at its next round) when
    // no other node took the record.
    const publish = async (node: BenchNode, attempt: number): Promise<boolean> => {
      if (variant === 'stock') return (await stockPublish(node)) > 0
      // refresh() right after start() runs the first round itself
      if (attempt === 0) await node.discovery?.start()
      await node.discovery
        ?.refresh({ signal: AbortSignal.timeout(60_000) })
        .catch((err: Error) => note(`publish failed: ${err.message}`))
      return heldElsewhere(nodes, node)
    }
    let pending = nodes
    for (let attempt = 0; attempt < 3 && pending.length > 0; attempt++) {
      const missed: BenchNode[] = []
      await forEachLimited(pending, 8, async (node) => {
        if (!(await publish(node, attempt))) missed.push(node)
      })
      if (missed.length > 0)
        note(`n${n} ${variant}: ${missed.length} records reached no peer (try ${attempt + 1})`)
      pending = missed
    }
    await sleep(500)
    note(`n${n} ${variant}: ${n} nodes up and published in ${Math.round(performance.now() - started)} ms`)
    const stored =
      variant === 'mesh'
        ? pairs.filter(([, b]) => heldElsewhere(nodes, nodes[b] as BenchNode)).length / pairs.length
        : undefined

    const lookup = async (looker: BenchNode, target: BenchNode): Promise<Sample> => {
      const signal = AbortSignal.timeout(timeoutMs)
      const t0 = performance.now()
      try {
        if (variant === 'mesh') {
          const result = await (looker.discovery as NonNullable<BenchNode['discovery']>).lookup(
            target.key.did,
            {
              first: true,
              signal,
            },
          )
          const ok = result.record.did === target.key.did
          return {
            ok,
            ms: performance.now() - t0,
            ...(result.hops !== undefined ? { hops: result.hops } : {}),
            ...(result.firstMs !== undefined ? { firstMs: result.firstMs } : {}),
          }
        }
        const result = await stockLookup(looker.libp2p, target.key.did, signal)
        return { ok: result.record.did === target.key.did, ms: performance.now() - t0, hops: result.hops }
      } catch (err) {
        const ms = performance.now() - t0
        note(`n${n} ${variant}: lookup failed after ${Math.round(ms)} ms: ${(err as Error).message}`)
        return { ok: false, ms }
      }
    }

    // Unmeasured warm-up (JIT, first streams): 16 lookups from spread-out nodes.
    for (let i = 0; i < n; i += Math.ceil(n / 16))
      await lookup(nodes[i] as BenchNode, nodes[(i + 1) % n] as BenchNode)
    const samples: Sample[] = []
    for (const [a, b] of pairs) samples.push(await lookup(nodes[a] as BenchNode, nodes[b] as BenchNode))
    const failed = samples.filter((s) => !s.ok).length
    if (failed > 0) note(`n${n} ${variant}: ${failed} of ${samples.length} lookups failed`)
    const slowest = [...samples].sort((x, y) => y.ms - x.ms).slice(0, 5)
    note(
      `n${n} ${variant}: slowest ${slowest
        .map(
          (x) =>
            `${Math.round(x.ms)}${x.firstMs !== undefined ? ` (record at ${Math.round(x.firstMs)})` : ''}`,
        )
        .join(', ')} ms; connections per node ${median(nodes.map((x) => x.libp2p.getConnections().length))}`,
    )
    if (variant === 'stock') return { samples }
    const rttMs = await pingRtt(nodes[0] as BenchNode, nodes[1] as BenchNode, init.pings ?? 300)
    return { samples, ...(rttMs !== undefined ? { rttMs } : {}), ...(stored !== undefined ? { stored } : {}) }
  } finally {
    await pool.stopAll()
  }
}

/** What a stock node does to publish: its signed record, put into the DHT; how many peers took it. */
async function stockPublish(node: BenchNode): Promise<number> {
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
  try {
    const dht: KadDHT = node.libp2p.services.dht
    for await (const event of dht.put(meshRecordKey(node.key.did), encodeMeshRecord(record), {
      signal: AbortSignal.timeout(60_000),
    })) {
      if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') reached++
    }
  } catch (err) {
    note(`stock put from ${node.libp2p.peerId} failed: ${(err as Error).message}`)
  }
  return reached
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

/** Median wall time of a libp2p ping (stream open, 32 bytes out and back) from a to b. */
async function pingRtt(a: BenchNode, b: BenchNode, count: number): Promise<number | undefined> {
  const times: number[] = []
  try {
    await a.libp2p.dial(b.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(5_000) })
    for (let i = 0; i < 20 + count; i++) {
      const t0 = performance.now()
      await a.libp2p.services.ping.ping(b.libp2p.peerId, { signal: AbortSignal.timeout(5_000) })
      if (i >= 20) times.push(performance.now() - t0)
    }
  } catch (err) {
    note(`ping failed after ${times.length} pings: ${(err as Error).message}`)
  }
  if (times.length === 0) return undefined
  note(
    `ping rtt p10 ${percentile(times, 10).toFixed(3)} p50 ${median(times).toFixed(3)} p90 ${percentile(times, 90).toFixed(3)} ms`,
  )
  return median(times)
}

/** Whether the DHT store of some node other than `target` holds target's record. */
function heldElsewhere(nodes: BenchNode[], target: BenchNode): boolean {
  const dsKey = new Key(`/dht/record/${uint8ArrayToString(meshRecordKey(target.key.did), 'base32')}`)
  return nodes.some((node) => node !== target && node.datastore?.has(dsKey) === true)
}
