/**
 * DHT lookup latency, hops and success for N meshes on loopback, side by side with the
 * same lookups on N hosts with the stock kad-dht configuration.
 *
 * Layout: the N nodes of a side run in `workers` child processes (dht-worker.ts, N /
 * workers nodes each, node g in process g mod workers), driven over IPC. A network of
 * separate hosts is what the round-trip bound describes; N nodes on one event loop
 * would queue every hop behind every other node's work. Both sides use the same
 * layout and the same (looker, target) pairs, one lookup at a time, after 16
 * unmeasured warm-up lookups; each lookup is timed inside the looker's process.
 *
 * Mesh side: mesh stacks whose discovery publishes their signed records; a lookup is
 * what the node does, `discovery.lookup(did, {first: true})`: a first round to the
 * connected neighbours closest to the key (NeighbourRecords), then kad-dht's walk ending
 * at the first valid record; timed until the validated record is in hand, as the stock
 * side is (the node's LevelDB write after it is reported apart). Stock side: `dht: 'stock'` hosts, each putting the same kind of
 * signed record; a lookup is kad-dht's `get` run to its end (then validated).
 *
 * The round trip of the bound is a libp2p ping between two nodes in different
 * processes: open a new yamux stream, negotiate the protocol, 32 bytes out and back —
 * what every DHT request costs before its message is even encoded. Three pings follow
 * each lookup (looker → the node after it, in the next process), so the bound is
 * measured all through the run under the lookups' own load; the median of those.
 */
import {
  bootstrapTargets,
  Deadline,
  defaultConnectionMonitor,
  defaultWorkers,
  Progress,
} from './dht-pacing.ts'
import type { Sample, Variant } from './dht-worker.ts'
import { Workers } from './dht-workers.ts'
import { forEachLimited } from './nodes.ts'
import { emit, median, note, percentile, type ResultName, sleep } from './report.ts'

export interface DhtLookupInit {
  /** Number of nodes in each network. */
  n: number
  /** Measured lookups (random looker → other mesh pairs); default 200. */
  lookups?: number
  /** Per lookup; a lookup that takes longer is a failure; default 10 000. */
  timeoutMs?: number
  /** Pings after each mesh lookup, for the loopback round trip of the bound; default 3. */
  pingsPerLookup?: number
  /** Back-to-back pings of one pair after the lookups, reported for comparison; default 300. */
  pings?: number
  /** Child processes each side's nodes are spread over; default min(8, n / 4), from 128 nodes n / 16. */
  workers?: number
  /** Connections each node keeps at most (libp2p's maxConnections); default the node's own (see dht-pacing.ts). */
  maxConnections?: number
  /** libp2p's connection monitor; default the node's own up to 64 nodes, then off (see dht-pacing.ts). */
  connectionMonitor?: { enabled?: boolean; pingInterval?: number }
  /** Nodes joining the network at once at bootstrap; default 8. */
  joinConcurrency?: number
  /** Records published at once; default 8. */
  publishConcurrency?: number
  /** A side that takes longer ends with an error (its rows unmeasured); default max(20 min, n × 5 s). */
  sideTimeoutMs?: number
}

/** The results `benchDhtLookup` writes for `n`. */
export function dhtLookupNames(n: number): ResultName[] {
  return [
    { name: `dht.lookup_p50_ms.n${n}`, unit: 'ms', better: 'lower' },
    { name: `dht.lookup_p90_ms.n${n}`, unit: 'ms', better: 'lower' },
    { name: `dht.lookup_hops_p50.n${n}`, unit: 'hops', better: 'lower' },
    { name: `dht.lookup_success.n${n}`, unit: 'fraction', better: 'higher' },
    { name: `dht.lookup_p90_vs_rtt_bound.n${n}`, unit: 'ms', better: 'lower' },
    { name: `dht.lookup_by_walk.n${n}`, unit: 'fraction', better: 'higher' },
  ]
}

interface Side {
  samples: Sample[]
  /** Mesh side only: median libp2p ping between two of its nodes in different processes, ms. */
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
  // How many lookups the DHT walk answered rather than a connected neighbour, against the
  // stock side (which always walks): at 16 or 64 meshes nearly none, so the figures above
  // say little about a network of thousands (see dht.sim_*). Informational: no aim.
  const ok = mesh.samples.filter((s) => s.ok)
  const byWalk = ok.length === 0 ? null : ok.filter((s) => s.via === 'dht').length / ok.length
  emit(`dht.lookup_by_walk.n${n}`, byWalk, 'fraction', 1, 0, 'higher')
}

interface NodeInfo {
  did: string
  peerId: string
  addrs: string[]
}

async function runSide(
  n: number,
  variant: Variant,
  pairs: ReadonlyArray<readonly [number, number]>,
  init: DhtLookupInit,
): Promise<Side> {
  const timeoutMs = init.timeoutMs ?? 10_000
  const k = Math.max(1, Math.min(init.workers ?? defaultWorkers(n), n))
  const maxConnections = init.maxConnections
  const connectionMonitor = init.connectionMonitor ?? defaultConnectionMonitor(n)
  const label = `n${n} ${variant}`
  const deadline = new Deadline(label, init.sideTimeoutMs ?? Math.max(20 * 60_000, n * 5_000))
  const started = performance.now()
  const workers = await Workers.start(k)
  try {
    // node g lives in worker g % k at index floor(g / k)
    const perWorker = await Promise.all(
      Array.from({ length: k }, (_, w) =>
        workers.ask<NodeInfo[]>(w, {
          op: 'init',
          variant,
          count: Math.ceil((n - w) / k),
          ...(maxConnections !== undefined ? { maxConnections } : {}),
          ...(connectionMonitor !== undefined ? { connectionMonitor } : {}),
        }),
      ),
    )
    const nodes: NodeInfo[] = Array.from(
      { length: n },
      (_, g) => perWorker[g % k]?.[Math.floor(g / k)] as NodeInfo,
    )
    const phase = async (what: string): Promise<void> => {
      const stats = await workers.all<{
        cpuMs: number
        rssMiB: number
        connections: number[]
        opened: number
      }>({
        op: 'stats',
      })
      const connections = stats.flatMap((s) => s.connections)
      const sum = (f: (s: (typeof stats)[number]) => number) =>
        Math.round(stats.reduce((a, s) => a + f(s), 0))
      note(
        `${label}: ${what} at ${Math.round((performance.now() - started) / 1000)} s` +
          ` (workers' cpu ${Math.round(sum((s) => s.cpuMs) / 1000)} s, rss ${sum((s) => s.rssMiB)} MiB,` +
          ` connections per node p50 ${median(connections)} max ${Math.max(...connections)},` +
          ` ${Math.round(sum((s) => s.opened) / 2)} opened so far)`,
      )
    }
    await phase(
      `${n} nodes up in ${k} processes` +
        (maxConnections !== undefined ? `, at most ${maxConnections} connections each` : '') +
        (connectionMonitor?.enabled === false ? ', no liveness pings' : ''),
    )
    await connect(workers, nodes, label, deadline, init.joinConcurrency ?? 8)
    await phase('bootstrapped')

    // A few publishes at a time, and again (as a node does at its next round) when no
    // other node took the record.
    const heldElsewhere = async (g: number): Promise<boolean> =>
      (await workers.all<boolean>({ op: 'holds', did: (nodes[g] as NodeInfo).did })).some(Boolean)
    const publish = async (g: number, attempt: number): Promise<boolean> => {
      try {
        const reached = await workers.askNode<number>(g, (index) => ({
          op: 'publish',
          index,
          first: attempt === 0,
          timeoutMs: 120_000,
        }))
        return variant === 'stock' ? reached > 0 : await heldElsewhere(g)
      } catch (err) {
        note(`${label}: publish ${g} failed: ${(err as Error).message}`)
        // the round may have placed it all the same
        return variant === 'mesh' ? await heldElsewhere(g) : false
      }
    }
    let pending = nodes.map((_, g) => g)
    for (let attempt = 0; attempt < 3 && pending.length > 0; attempt++) {
      const missed: number[] = []
      const progress = new Progress(
        `${label}: publishing${attempt > 0 ? ` (try ${attempt + 1})` : ''}`,
        pending.length,
      )
      await forEachLimited(pending, init.publishConcurrency ?? 8, async (g) => {
        deadline.check('publishing')
        if (!(await publish(g, attempt))) missed.push(g)
        progress.tick(`${missed.length} reached no peer`)
      })
      if (pending.length > 16) progress.finish()
      if (missed.length > 0) note(`${label}: ${missed.length} records reached no peer (try ${attempt + 1})`)
      pending = missed
    }
    await sleep(500)
    await phase('published')
    let stored: number | undefined
    if (variant === 'mesh') {
      const held = await Promise.all(nodes.map((_, g) => heldElsewhere(g)))
      stored = pairs.filter(([, b]) => held[b]).length / pairs.length
    }

    // Mesh side: after each lookup the looker pings node a + 1 (in the next process, and
    // connected since bootstrap), so the round trip of the bound is measured all through
    // the run, under the same load as the lookups.
    const pingsPerLookup = variant === 'mesh' && k > 1 ? (init.pingsPerLookup ?? 3) : 0
    const lookup = async (a: number, b: number): Promise<Sample> => {
      const partner = nodes[(a + 1) % n] as NodeInfo
      const sample = await workers.askNode<Sample>(a, (index) => ({
        op: 'lookup',
        index,
        did: (nodes[b] as NodeInfo).did,
        timeoutMs,
        ...(pingsPerLookup > 0
          ? { ping: { peerId: partner.peerId, addrs: partner.addrs, pings: pingsPerLookup } }
          : {}),
      }))
      if (!sample.ok)
        note(`n${n} ${variant}: lookup ${a} → ${b} failed after ${Math.round(sample.ms)} ms: ${sample.error}`)
      return sample
    }
    // Unmeasured warm-up (JIT, first streams): 16 lookups from spread-out nodes.
    for (let i = 0; i < n; i += Math.ceil(n / 16)) await lookup(i, (i + 1) % n)
    const samples: Sample[] = []
    const progress = new Progress(`${label}: lookups`, pairs.length)
    for (const [a, b] of pairs) {
      deadline.check('lookups')
      samples.push(await lookup(a, b))
      progress.tick(`${samples.filter((s) => !s.ok).length} failed`)
    }
    const failed = samples.filter((s) => !s.ok).length
    if (failed > 0) note(`n${n} ${variant}: ${failed} of ${samples.length} lookups failed`)
    if (variant === 'mesh') {
      const byNeighbours = samples.filter((s) => s.via === 'neighbours').map((s) => s.ms)
      const wall = samples.flatMap((s) => (s.ok && s.wallMs !== undefined ? [s.wallMs] : []))
      note(
        `n${n} mesh: ${byNeighbours.length} of ${samples.length} answered by a connected neighbour` +
          ` (p90 ${percentile(byNeighbours, 90).toFixed(2)} ms), the rest by the DHT walk;` +
          ` with filing the record in LevelDB p50 ${percentile(wall, 50).toFixed(2)} p90 ${percentile(wall, 90).toFixed(2)} ms`,
      )
    }
    const slowest = [...samples].sort((x, y) => y.ms - x.ms).slice(0, 5)
    const connections = (await workers.all<number[]>({ op: 'connections' })).flat()
    note(
      `n${n} ${variant}: slowest ${slowest
        .map(
          (x) =>
            `${Math.round(x.ms)}${x.firstMs !== undefined ? ` (record at ${Math.round(x.firstMs)})` : ''}`,
        )
        .join(', ')} ms; connections per node ${median(connections)}`,
    )
    if (variant === 'stock') return { samples }
    const interleaved = samples.flatMap((s) => s.pingsMs ?? [])
    const describe = (times: number[]) =>
      `p10 ${percentile(times, 10).toFixed(3)} p50 ${median(times).toFixed(3)} p90 ${percentile(times, 90).toFixed(3)} ms`
    // For comparison: one pair, node 0 → node 1, back to back after the lookups.
    try {
      const peer = nodes[1] as NodeInfo
      const times = await workers.askNode<number[]>(0, (index) => ({
        op: 'ping',
        index,
        peerId: peer.peerId,
        addrs: peer.addrs,
        count: init.pings ?? 300,
      }))
      note(`n${n}: ping rtt, one pair back to back after the lookups: ${describe(times)}`)
    } catch (err) {
      note(`n${n}: ping failed: ${(err as Error).message}`)
    }
    let rttMs: number | undefined
    if (interleaved.length > 0) {
      note(
        `n${n}: ping rtt (new stream + 32 B request/response, across processes), ${interleaved.length} interleaved with the lookups: ${describe(interleaved)}`,
      )
      rttMs = median(interleaved)
    }
    return { samples, ...(rttMs !== undefined ? { rttMs } : {}), ...(stored !== undefined ? { stored } : {}) }
  } finally {
    await workers.stop()
  }
}

/**
 * Bootstraps the DHT, paced: nodes join in order, `joinConcurrency` at a time, and node g
 * dials g - 1 and up to 3 other random earlier nodes (bootstrapTargets) at once, each
 * dial tried twice; then waits (up to 60 s) until every routing table holds at least
 * min(4, n - 1) peers. Progress on stderr; past the side's deadline it throws.
 */
async function connect(
  workers: Workers,
  nodes: NodeInfo[],
  label: string,
  deadline: Deadline,
  joinConcurrency: number,
  fanout = 4,
): Promise<void> {
  const plan = bootstrapTargets(nodes.length, fanout)
  const joining = nodes.map((_, g) => g).slice(1)
  const progress = new Progress(`${label}: bootstrap joins`, joining.length)
  let failed = 0
  await forEachLimited(joining, joinConcurrency, async (g) => {
    deadline.check('bootstrap')
    // a join's dials go out at once; each is tried twice
    await Promise.all(
      (plan[g] ?? []).map(async (j) => {
        for (let attempt = 0; ; attempt++) {
          try {
            await workers.askNode(g, (index) => ({
              op: 'dial',
              index,
              addrs: (nodes[j] as NodeInfo).addrs,
              timeoutMs: 30_000,
            }))
            return
          } catch (err) {
            if (attempt === 0) continue
            failed++
            note(`${label}: bootstrap dial ${g} → ${j} failed twice: ${(err as Error).message}`)
            return
          }
        }
      }),
    )
    progress.tick(`${failed} dials failed`)
  })
  if (nodes.length > 16) progress.finish()
  const want = Math.min(fanout, nodes.length - 1)
  const waitUntil = Date.now() + 60_000
  let lastNote = Date.now()
  for (;;) {
    const sizes = (await workers.all<number[]>({ op: 'tableSizes' })).flat()
    const short = sizes.filter((size) => size < want).length
    if (short === 0) return
    if (Date.now() > waitUntil) {
      note(
        `${label}: ${short} of ${nodes.length} routing tables still hold fewer than ${want} peers; going on`,
      )
      return
    }
    if (Date.now() - lastNote > 10_000) {
      lastNote = Date.now()
      note(`${label}: ${short} of ${nodes.length} routing tables hold fewer than ${want} peers yet`)
    }
    deadline.check('bootstrap')
    await sleep(200)
  }
}
