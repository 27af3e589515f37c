/**
 * Pacing for the DHT lookup benchmark at 256 meshes (dht-lookup.ts): how the nodes are
 * spread over processes, whom each node dials when it joins, progress lines while a
 * phase runs and a deadline that ends a side with a clear error instead of running on.
 *
 * All on one 2-core machine, every libp2p connection costs its two ends some 10–30 ms of
 * CPU (TCP, Noise, Yamux, identify, kad-dht's ping before its routing table takes a
 * peer), and kad-dht pings every peer it hears of while its table has room (64 buckets
 * of 20): each join brings some 40 new connections, and 256 meshes drift towards each
 * connected to all. Firing every bootstrap dial at once queues each handshake behind
 * thousands of others, so dials time out and routing tables stay short; joining a few
 * nodes at a time keeps each process's queue short. Lowering maxConnections does not
 * help: a node at its limit refuses inbound connections, kad-dht's ping to it fails and
 * no routing table takes it (at 128 meshes and 32 connections, 52 tables held fewer
 * than 4 peers after bootstrap).
 */
import { note } from './report.ts'

/** Nodes per process at and above 128 meshes; below, min(8, n / 4) processes as before. */
export const NODES_PER_WORKER = 16

/** Child processes for `n` nodes: min(8, n / 4) up to 64 nodes, then n / 16. */
export function defaultWorkers(n: number): number {
  const k = n <= 64 ? Math.min(8, Math.floor(n / 4)) : Math.ceil(n / NODES_PER_WORKER)
  return Math.max(1, Math.min(k, n))
}

/**
 * libp2p's connection monitor for `n` nodes: the node's own (undefined) up to 64 nodes;
 * from 128, off. It pings every connection every 10 s and aborts the connection when a
 * ping fails: harmless for one host, but 256 hosts sharing two cores spend most of their
 * CPU on those pings, time out under the load and abort connections, which kad-dht then
 * dials again (at 128 meshes, 4,588 connections opened during bootstrap for 3 open per
 * node at its end).
 */
export function defaultConnectionMonitor(n: number): { enabled: boolean } | undefined {
  return n <= 64 ? undefined : { enabled: false }
}

/**
 * Whom each node dials when it joins: node g (g ≥ 1) dials g - 1 and up to `fanout - 1`
 * other earlier nodes, chosen with `random`; node 0 dials no one. Each list is distinct
 * and holds only earlier nodes.
 */
export function bootstrapTargets(n: number, fanout: number, random: () => number = Math.random): number[][] {
  const plan: number[][] = [[]]
  for (let g = 1; g < n; g++) {
    const targets = [g - 1]
    const others = Array.from({ length: g - 1 }, (_, j) => j)
    // a partial Fisher-Yates shuffle: the first picks are uniform among the earlier nodes
    for (let i = 0; i < others.length && targets.length < fanout; i++) {
      const pick = i + Math.floor(random() * (others.length - i))
      const chosen = others[pick] as number
      others[pick] = others[i] as number
      others[i] = chosen
      targets.push(chosen)
    }
    plan.push(targets)
  }
  return plan
}

/** Ends a side that runs longer than it may: `check` throws a DeadlineError naming the phase. */
export class Deadline {
  readonly #label: string
  readonly #ms: number
  readonly #started = performance.now()

  constructor(label: string, ms: number) {
    this.#label = label
    this.#ms = ms
  }

  get elapsedMs(): number {
    return performance.now() - this.#started
  }

  get remainingMs(): number {
    return this.#ms - this.elapsedMs
  }

  /** Throws when the time is up. */
  check(phase: string): void {
    if (this.remainingMs > 0) return
    throw new DeadlineError(
      `${this.#label}: not done after ${Math.round(this.#ms / 1000)} s (in ${phase}); giving up`,
    )
  }
}

export class DeadlineError extends Error {
  override name = 'DeadlineError'
}

/**
 * Counts a phase's steps and writes `label: done/total (…)` on stderr at most every
 * `everyMs`, and once at the end (`finish`).
 */
export class Progress {
  readonly #label: string
  readonly #total: number
  readonly #everyMs: number
  readonly #write: (line: string) => void
  readonly #started = performance.now()
  #last = performance.now()
  #done = 0
  #extra = ''

  constructor(label: string, total: number, everyMs = 10_000, write: (line: string) => void = note) {
    this.#label = label
    this.#total = total
    this.#everyMs = everyMs
    this.#write = write
  }

  get done(): number {
    return this.#done
  }

  /** One more step done; `extra` is appended to the next line (e.g. failures so far). */
  tick(extra = ''): void {
    this.#done++
    this.#extra = extra
    const now = performance.now()
    if (now - this.#last < this.#everyMs || this.#done >= this.#total) return
    this.#last = now
    this.#line()
  }

  finish(extra = this.#extra): void {
    this.#extra = extra
    this.#line()
  }

  #line(): void {
    const seconds = Math.round((performance.now() - this.#started) / 1000)
    this.#write(
      `${this.#label}: ${this.#done}/${this.#total} in ${seconds} s${this.#extra ? `, ${this.#extra}` : ''}`,
    )
  }
}

/** `promise`, or a rejection with `message` after `ms` (the work itself goes on). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
