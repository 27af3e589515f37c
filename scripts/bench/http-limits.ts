/**
 * The HTTP API's sign-in and read rates with the rate limits on, against the same
 * without (issue 10: aim ≥ 0.9×). Two servers as the node builds them, in one child
 * process (http-limits-server.ts), differ only in `rateLimits`: on with every class set
 * high enough never to refuse this traffic — what is measured is the limiter's cost, not
 * its refusals (a refusal fails the bench) — or `false`.
 *
 * - http.signin_per_s: whole sign-ins (GET /api/session/challenge, Ed25519 signature,
 *   POST /api/session), `concurrency` at a time.
 * - http.read_per_s: GET /api/me with a session token (the session lookup and, limits
 *   on, the per-principal charge), `concurrency` at a time.
 *
 * A rate is requests per second of the server process's CPU time (every thread:
 * LevelDB's and GC included): neither this client's work nor the other processes of a
 * busy machine count. Short slices alternate (on, off, off, on, …), so that what remains
 * of the load hits both alike; one warm-up round is discarded. Single rounds still swing
 * (±20 % on a shared machine, as an A/A run with `limits: false` shows), so each result
 * pools the measured rounds: requests over CPU time, summed per side; the rounds' ratios
 * go to stderr.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { sessionChallengeText } from '../../src/auth/index.ts'
import type { RateLimitsInit } from '../../src/http/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { type BenchResult, fmt, note, type ResultName, round } from './report.ts'

const SERVER_SCRIPT = new URL('./http-limits-server.ts', import.meta.url).pathname

export const HTTP_LIMITS_NAMES: ResultName[] = [
  { name: 'http.signin_per_s', unit: 'sign-ins/s', better: 'higher' },
  { name: 'http.read_per_s', unit: 'requests/s', better: 'higher' },
]

export interface HttpLimitsBenchInit {
  /** Measured rounds (after one warm-up); default 7. */
  rounds?: number
  /** Slices of each side per round; default 20. */
  slices?: number
  /** Sign-ins per slice; default 25. */
  signIns?: number
  /** Reads per slice; default 250. */
  reads?: number
  /** Requests in flight at once; default 8. */
  concurrency?: number
  /** The measured side's limits; default every class far above this traffic (`false`: an A/A run, to see the noise). */
  limits?: RateLimitsInit | false
}

const HIGH = { max: 1_000_000_000, windowMs: 1_000 }
const LIMITS_ON: RateLimitsInit = { signIn: HIGH, invoke: HIGH, anonymous: HIGH, session: HIGH }

/** The server process: its two URLs (limits on, off), and its CPU clock. */
class Servers {
  readonly #proc: ChildProcess
  readonly urls: { on: string; off: string }
  readonly mesh: string
  readonly alice: Ed25519KeyPair

  private constructor(proc: ChildProcess, ready: { urls: [string, string]; mesh: string; alice: string }) {
    this.#proc = proc
    this.urls = { on: ready.urls[0], off: ready.urls[1] }
    this.mesh = ready.mesh
    this.alice = new Ed25519KeyPair(Buffer.from(ready.alice, 'base64url'))
  }

  static async start(limits: RateLimitsInit | false): Promise<Servers> {
    const proc = fork(SERVER_SCRIPT, [JSON.stringify(limits)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    })
    try {
      const [ready] = (await Promise.race([
        once(proc, 'message'),
        once(proc, 'exit').then(([code]) => {
          throw new Error(`http bench server exited with ${code}`)
        }),
      ])) as [{ urls: [string, string]; mesh: string; alice: string }]
      return new Servers(proc, ready)
    } catch (err) {
      proc.kill('SIGKILL')
      throw err
    }
  }

  /** The server process's CPU time, ms. */
  async cpu(): Promise<number> {
    const answer = once(this.#proc, 'message') as Promise<[{ cpu: number }]>
    this.#proc.send({ op: 'cpu' })
    return (await answer)[0].cpu
  }

  async stop(): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return
    const exited = once(this.#proc, 'exit')
    const timer = setTimeout(() => this.#proc.kill('SIGKILL'), 10_000)
    this.#proc.send({ op: 'exit' })
    await exited
    clearTimeout(timer)
  }
}

async function ok(response: Response, what: string): Promise<unknown> {
  const body = await response.json()
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status} ${JSON.stringify(body)}`)
  return body
}

async function signIn(servers: Servers, url: string): Promise<string> {
  const { nonce } = (await ok(await fetch(`${url}/api/session/challenge`), 'challenge')) as { nonce: string }
  const signature = Buffer.from(
    servers.alice.sign(new TextEncoder().encode(sessionChallengeText(servers.mesh, nonce))),
  ).toString('base64url')
  const res = await fetch(`${url}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ did: servers.alice.did, nonce, signature }),
  })
  return ((await ok(res, 'sign-in')) as { token: string }).token
}

async function read(url: string, token: string): Promise<void> {
  await ok(await fetch(`${url}/api/me`, { headers: { authorization: `Bearer ${token}` } }), 'read')
}

/** Runs `n` calls of `one`, `concurrency` at a time; returns the server's CPU milliseconds spent. */
async function slice(
  servers: Servers,
  n: number,
  concurrency: number,
  one: () => Promise<unknown>,
): Promise<number> {
  let next = 0
  const t0 = await servers.cpu()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) await one()
    }),
  )
  return (await servers.cpu()) - t0
}

/** `on`/`off`: [requests, CPU ms] per measured round. */
function result(
  name: string,
  unit: string,
  on: Array<[number, number]>,
  off: Array<[number, number]>,
): BenchResult {
  const perSecond = ([n, ms]: [number, number]) => (n * 1000) / ms
  const ratios = on.map((v, i) => perSecond(v) / perSecond(off[i] as [number, number]))
  note(`${name}: on ${fmt(on.map(perSecond))}; off ${fmt(off.map(perSecond))}; ratios ${fmt(ratios)}`)
  const pooled = (rounds: Array<[number, number]>) =>
    perSecond(rounds.reduce<[number, number]>((a, [n, ms]) => [a[0] + n, a[1] + ms], [0, 0]))
  const value = pooled(on)
  const baseline = pooled(off)
  const ratio = round(value / baseline)
  return {
    name,
    value: round(value),
    unit,
    baseline: round(baseline),
    ratio,
    target: 0.9,
    better: 'higher',
    met: ratio >= 0.9,
  }
}

export async function* benchHttpLimits(init: HttpLimitsBenchInit = {}): AsyncGenerator<BenchResult> {
  const rounds = init.rounds ?? 7
  const slices = init.slices ?? 20
  const concurrency = init.concurrency ?? 8
  const signIns = init.signIns ?? 25
  const reads = init.reads ?? 250
  const servers = await Servers.start(init.limits ?? LIMITS_ON)
  try {
    const urls = servers.urls
    const tokens = { on: await signIn(servers, urls.on), off: await signIn(servers, urls.off) }
    const signInRates = { on: [] as Array<[number, number]>, off: [] as Array<[number, number]> }
    const readRates = { on: [] as Array<[number, number]>, off: [] as Array<[number, number]> }
    for (let r = 0; r <= rounds; r++) {
      const signInCpu = { on: 0, off: 0 }
      const readCpu = { on: 0, off: 0 }
      for (let i = 0; i < slices; i++) {
        // Alternate which goes first, so a trend within a round favours neither.
        const order = i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)
        for (const which of order) {
          const url = urls[which]
          signInCpu[which] += await slice(servers, signIns, concurrency, () => signIn(servers, url))
        }
        for (const which of order) {
          const url = urls[which]
          readCpu[which] += await slice(servers, reads, concurrency, () => read(url, tokens[which]))
        }
      }
      if (r === 0) continue // warm-up: JIT, LevelDB and connection pools
      for (const which of ['on', 'off'] as const) {
        signInRates[which].push([signIns * slices, signInCpu[which]])
        readRates[which].push([reads * slices, readCpu[which]])
      }
    }
    yield result('http.signin_per_s', 'sign-ins/s', signInRates.on, signInRates.off)
    yield result('http.read_per_s', 'requests/s', readRates.on, readRates.off)
  } finally {
    await servers.stop()
  }
}
