/**
 * Beyond what one machine runs: Kademlia lookups in a simulated network of N meshes
 * (issue 15), to show how hops and lookup time grow with N — at 16 or 64 real meshes a
 * connected neighbour answers nearly every lookup, which says nothing about thousands.
 *
 * What is simulated, and how it follows the real node (src/p2p/host.ts, kad-dht 16):
 * - Kad ids are 256-bit, uniform (kad-dht uses sha-256 of the peer id).
 * - Routing tables: for each common-prefix length i with the node's own id, up to k = 20
 *   peers of that region of the key space, chosen at random (what the self-query and
 *   the random walk fill them with). The same k as the node.
 * - Record placement: a mesh record is held by the k nodes closest to its key (a PUT
 *   goes to the k closest a walk finds; the simulation takes the true k closest).
 * - A lookup is the mesh node's: α = 3 requests in flight on each of 2 disjoint paths,
 *   each answer the k closest peers the answering node knows, ending at the first
 *   node that holds the record (mesh records are signed and seq-ordered, so the first
 *   valid answer will do). A first answer from one of the looker's own routing table
 *   peers is what the real node gets from its connected neighbours.
 * - Links: every request a round trip of `rttMs`, times a uniform jitter of 0.5–1.5.
 * Not simulated: churn, stale entries, slow or hostile peers.
 */
import { randomBytes } from 'node:crypto'
import { emit, note, percentile, type ResultName } from './report.ts'

export interface DhtSimInit {
  /** Network sizes; default 1,000, 10,000 and 100,000. */
  sizes?: number[]
  /** Lookups per size; default 1,000. */
  lookups?: number
  /** Round trip of one request, ms; default 40 (meshes on one continent). */
  rttMs?: number
  k?: number
  alpha?: number
  disjointPaths?: number
  /** Random source for ids and choices (tests pass a seeded one); default Math.random. */
  random?: () => number
}

export interface DhtSimResult {
  n: number
  hops: number[]
  ms: number[]
  requests: number[]
  /** Lookups answered in the first round, by the looker's own routing table peers. */
  byNeighbour: number
  failed: number
}

const BITS = 256
const SIM_SIZES = [1000, 10_000, 100_000]

export function dhtSimNames(sizes: number[] = SIM_SIZES): ResultName[] {
  return sizes.flatMap((n) => [
    { name: `dht.sim_hops_p50.n${n}`, unit: 'hops', better: 'lower' as const },
    { name: `dht.sim_hops_p90.n${n}`, unit: 'hops', better: 'lower' as const },
    { name: `dht.sim_lookup_p50_ms.n${n}`, unit: 'ms', better: 'lower' as const },
    { name: `dht.sim_lookup_p90_ms.n${n}`, unit: 'ms', better: 'lower' as const },
    { name: `dht.sim_hops_per_log2n.n${n}`, unit: 'hops', better: 'lower' as const },
    { name: `dht.sim_lookup_ms_per_log2n.n${n}`, unit: 'ms', better: 'lower' as const },
  ])
}

/** A simulated network: ids sorted, so each bucket's region is a contiguous range. */
export class SimNetwork {
  readonly ids: bigint[]
  readonly tables: Int32Array[]
  readonly k: number

  constructor(n: number, k: number, random: () => number) {
    this.k = k
    const ids = new Set<bigint>()
    while (ids.size < n) ids.add(randomId(random))
    this.ids = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    this.tables = this.ids.map((id) => this.#fill(id, random))
  }

  /** Up to k random peers from each region at common-prefix length 0, 1, … with `self`. */
  #fill(self: bigint, random: () => number): Int32Array {
    const table: number[] = []
    for (let cpl = 0; cpl < BITS; cpl++) {
      // The region: self's first cpl bits, then the opposite of self's bit cpl.
      const shift = BigInt(BITS - cpl - 1)
      const prefix = ((self >> shift) ^ 1n) << shift
      const [from, to] = this.#range(prefix, prefix + (1n << shift))
      if (to - from === 0) {
        // Nothing shares a longer prefix once the own region holds only self.
        const [ownFrom, ownTo] = this.#range(self & ~((1n << shift) - 1n), (self | ((1n << shift) - 1n)) + 1n)
        if (ownTo - ownFrom <= 1) break
        continue
      }
      const size = to - from
      if (size <= this.k) for (let i = from; i < to; i++) table.push(i)
      else for (const i of sample(size, this.k, random)) table.push(from + i)
    }
    return Int32Array.from(table)
  }

  /** Indices [from, to) of ids in [low, high). */
  #range(low: bigint, high: bigint): [number, number] {
    return [lowerBound(this.ids, low), lowerBound(this.ids, high)]
  }

  /** The `count` nodes of `candidates` closest to `key`. */
  closest(key: bigint, candidates: Iterable<number>, count: number): number[] {
    return [...candidates]
      .map((i) => ({ i, d: (this.ids[i] as bigint) ^ key }))
      .sort((a, b) => (a.d < b.d ? -1 : a.d > b.d ? 1 : 0))
      .slice(0, count)
      .map((x) => x.i)
  }

  /** The k nodes holding the record under `key`: the true k closest. */
  holders(key: bigint): Set<number> {
    // Every node sharing a longer prefix with the key is closer than any that shares a
    // shorter one, so the k closest lie in the longest prefix region holding ≥ k nodes.
    let [from, to] = [0, this.ids.length]
    for (let cpl = 1; cpl <= BITS; cpl++) {
      const shift = BigInt(BITS - cpl)
      const low = (key >> shift) << shift
      const [f, t] = this.#range(low, low + (1n << shift))
      if (t - f < this.k) break
      ;[from, to] = [f, t]
    }
    return new Set(this.closest(key, range(from, to), this.k))
  }
}

interface Pending {
  at: number
  node: number
  path: number
  depth: number
}

/**
 * One lookup from `looker` for the record at `key`, held by `holders`: an event-driven
 * walk over simulated links. Returns hops (the depth of the answering node; 1 = one of
 * the looker's own peers), time and requests, or undefined when no path found it.
 */
export function simulateLookup(
  net: SimNetwork,
  looker: number,
  key: bigint,
  holders: Set<number>,
  options: { alpha: number; disjointPaths: number; rttMs: number; random: () => number },
): { hops: number; ms: number; requests: number } | undefined {
  const { alpha, disjointPaths, rttMs, random } = options
  const queried = new Set<number>([looker])
  const start = net.closest(key, net.tables[looker] as Int32Array, net.k)
  // Each path a candidate list with depths, sorted by distance when a request goes out.
  const candidates: Map<number, number>[] = Array.from({ length: disjointPaths }, () => new Map())
  for (const [i, node] of start.entries()) candidates[i % disjointPaths]?.set(node, 1)
  const inFlight = new Array<number>(disjointPaths).fill(0)
  const events: Pending[] = []
  let requests = 0
  const send = (path: number, now: number): void => {
    const own = candidates[path] as Map<number, number>
    while ((inFlight[path] as number) < alpha && own.size > 0) {
      const [next] = net.closest(key, own.keys(), 1)
      if (next === undefined) break
      const depth = own.get(next) as number
      own.delete(next)
      if (queried.has(next)) continue
      queried.add(next)
      requests++
      inFlight[path] = (inFlight[path] as number) + 1
      events.push({ at: now + rttMs * (0.5 + random()), node: next, path, depth })
    }
  }
  for (let p = 0; p < disjointPaths; p++) send(p, 0)
  while (events.length > 0) {
    events.sort((a, b) => a.at - b.at)
    const answer = events.shift() as Pending
    inFlight[answer.path] = (inFlight[answer.path] as number) - 1
    if (holders.has(answer.node)) return { hops: answer.depth, ms: answer.at, requests }
    const own = candidates[answer.path] as Map<number, number>
    for (const peer of net.closest(key, net.tables[answer.node] as Int32Array, net.k)) {
      if (!queried.has(peer) && !own.has(peer)) own.set(peer, answer.depth + 1)
    }
    send(answer.path, answer.at)
  }
  return undefined
}

export function runDhtSim(n: number, init: DhtSimInit = {}): DhtSimResult {
  const random = init.random ?? Math.random
  const k = init.k ?? 20
  const options = {
    alpha: init.alpha ?? 3,
    disjointPaths: init.disjointPaths ?? 2,
    rttMs: init.rttMs ?? 40,
    random,
  }
  const net = new SimNetwork(n, k, random)
  const result: DhtSimResult = { n, hops: [], ms: [], requests: [], byNeighbour: 0, failed: 0 }
  for (let i = 0; i < (init.lookups ?? 1000); i++) {
    // A mesh record's key: any point of the key space; the looker is not a holder.
    const key = randomId(random)
    const holders = net.holders(key)
    let looker = Math.floor(random() * n)
    while (holders.has(looker)) looker = Math.floor(random() * n)
    const found = simulateLookup(net, looker, key, holders, options)
    if (found === undefined) {
      result.failed++
      continue
    }
    result.hops.push(found.hops)
    result.ms.push(found.ms)
    result.requests.push(found.requests)
    if (found.hops === 1) result.byNeighbour++
  }
  return result
}

/** `npm run bench -- simulation`: rows per size, and hops per log2 N against the smallest size. */
export function benchDhtSim(init: DhtSimInit = {}): DhtSimResult[] {
  const sizes = init.sizes ?? SIM_SIZES
  const rttMs = init.rttMs ?? 40
  const results = sizes.map((n) => {
    const started = performance.now()
    const result = runDhtSim(n, init)
    note(
      `dht sim n${n}: ${result.hops.length} lookups, ${result.failed} failed, ${result.byNeighbour} answered by` +
        ` the looker's own peers, requests p50 ${percentile(result.requests, 50)}` +
        ` (${Math.round(performance.now() - started)} ms to simulate)`,
    )
    return result
  })
  const base = results[0] as DhtSimResult
  const perLog = (r: DhtSimResult) => mean(r.hops) / Math.log2(r.n)
  const msPerLog = (r: DhtSimResult) => mean(r.ms) / Math.log2(r.n)
  for (const r of results) {
    // Against the classic bound: each hop gains log2 k bits, so ⌈log2(N) / log2(k)⌉ + 1.
    const bound = Math.ceil(Math.log2(r.n) / Math.log2(init.k ?? 20)) + 1
    emit(`dht.sim_hops_p50.n${r.n}`, percentile(r.hops, 50), 'hops', bound, 1, 'lower')
    emit(`dht.sim_hops_p90.n${r.n}`, percentile(r.hops, 90), 'hops', bound, 1.5, 'lower')
    // Lookup time against the same number of sequential round trips.
    emit(`dht.sim_lookup_p50_ms.n${r.n}`, percentile(r.ms, 50), 'ms', bound * rttMs, 1, 'lower')
    emit(`dht.sim_lookup_p90_ms.n${r.n}`, percentile(r.ms, 90), 'ms', bound * rttMs, 1.5, 'lower')
    // Growth as log N: mean hops / log2 N, against the smallest network's; ≈ 1 when hops grow as log N.
    emit(`dht.sim_hops_per_log2n.n${r.n}`, perLog(r), 'hops', perLog(base), 1.25, 'lower')
    emit(`dht.sim_lookup_ms_per_log2n.n${r.n}`, msPerLog(r), 'ms', msPerLog(base), 1.25, 'lower')
  }
  return results
}

function randomId(random: () => number): bigint {
  let id = 0n
  for (let i = 0; i < BITS / 32; i++) id = (id << 32n) | BigInt(Math.floor(random() * 2 ** 32))
  return id
}

function* range(from: number, to: number): Generator<number> {
  for (let i = from; i < to; i++) yield i
}

function lowerBound(sorted: bigint[], value: bigint): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((sorted[mid] as bigint) < value) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** `count` distinct indices of [0, size), uniformly. */
function sample(size: number, count: number, random: () => number): number[] {
  const chosen = new Set<number>()
  while (chosen.size < count) chosen.add(Math.floor(random() * size))
  return [...chosen]
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length
}

/** A seeded random source (mulberry32) so a simulation can be run again alike. */
export function seededRandom(seed = Number.parseInt(randomBytes(4).toString('hex'), 16)): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
