/**
 * B3 — UCAN chain verifications per second for chains of depth 1, 2, 4 and 8, side by
 * side, in the same run, with:
 *
 * - stock ucanto: `access` from @ucanto/validator with @ucanto/principal's (pure-JS
 *   noble) verifier, on the same chains decoded from the same bytes;
 * - the ceiling: raw node:crypto Ed25519 verifications per second (same key pool,
 *   payloads of a UCAN's size) divided by the signatures in the chain (depth
 *   delegations + the invocation).
 *
 * A chain of depth d is mesh → k1 → … → kd (d delegations, keys drawn from a pool of 16
 * principals, as on a real mesh where principals recur and chains are new), and kd's
 * invocation of `room/post`. "Fresh": every chain is new to the verifier (cache off).
 * "Cached": the same chains again with the delegation cache warm; the invocation, new
 * on every real request, is still verified. A verification is `ChainVerifier.verify`:
 * decode the encoded token (CAR, hash-checked), the invoker's signature (DID proof) and
 * the chain (time, audience, alignment, revocation, narrowing, signatures); it does
 * not include credentials, tiers or the replay write, which do not depend on depth.
 *
 * Measurement (a loaded machine moves every number; the ratios are what count): time
 * is this process's CPU time by default (`clock`; GC threads included), so that other
 * processes taking the cores count against neither side. Chains are verified in small
 * slices, interleaved — a slice of fresh verifications, the same number of signatures
 * on raw node:crypto, the slice again on the warm verifier, and on every second slice
 * a quarter of it on stock ucanto — so that whatever load remains hits both sides of
 * each ratio alike. A warm-up round is discarded; each result is the round with the
 * median ratio out of `rounds` (default 5), its value and baseline from that round.
 * The rounds' spread goes to stderr.
 *
 * Targets (issue 5): fresh ≥ 50% of the ceiling and ≥ 8× stock ucanto; cached ≥ 80%
 * of the ceiling.
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto'
import { Delegation } from '@ucanto/core'
import type * as API from '@ucanto/interface'
import { Verifier as StockVerifier } from '@ucanto/principal'
import { access } from '@ucanto/validator'
import {
  ChainVerifier,
  DidResolver,
  encodeToken,
  issueDelegation,
  issueInvocation,
  parserOf,
} from '../../src/auth/authority/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import type { BenchResult, Better } from './report.ts'
import { note, round } from './report.ts'

export interface AuthorityBenchInit {
  depths?: number[]
  /** Chains per depth; default 480 / (depth + 1), at least 48. */
  chains?: (depth: number) => number
  /** Measured rounds per depth (after one warm-up round); default 5. */
  rounds?: number
  /** Chains per slice; default 8. */
  slice?: number
  /** Every how many slices stock ucanto verifies a quarter of one (it is ~10× slower); default 2. */
  stockEvery?: number
  /**
   * 'cpu' (default): rates per second of this process's CPU time, which a busy machine
   * (other processes taking the cores) does not inflate; 'wall': per elapsed second.
   */
  clock?: 'cpu' | 'wall'
}

/** Milliseconds of this process's CPU time (user + system, every thread: GC included). */
function cpuNow(): number {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

function result(
  name: string,
  value: number,
  unit: string,
  baseline: number,
  target: number,
  better: Better = 'higher',
): BenchResult {
  const ratio = Number.isFinite(value / baseline) ? round(value / baseline) : null
  return {
    name,
    value: round(value),
    unit,
    baseline: round(baseline),
    ratio,
    target,
    better,
    met: ratio !== null && (better === 'lower' ? ratio <= target : ratio >= target),
  }
}

/** One round's rates (per second). */
interface Round {
  fresh: number
  cached: number
  stock: number
  ceiling: number
  raw: number
}

/** The round whose `ratio` is the median (lower median for an even count). */
function medianRound(rounds: Round[], ratio: (r: Round) => number): Round {
  const sorted = [...rounds].sort((a, b) => ratio(a) - ratio(b))
  return sorted[Math.floor((sorted.length - 1) / 2)] as Round
}

export async function* benchAuthority(init: AuthorityBenchInit = {}): AsyncGenerator<BenchResult> {
  const depths = init.depths ?? [1, 2, 4, 8]
  const chainsFor = init.chains ?? ((d: number) => Math.max(48, Math.round(480 / (d + 1))))
  const rounds = init.rounds ?? 5
  const sliceSize = init.slice ?? 8
  const stockEvery = init.stockEvery ?? 2
  const clock = init.clock === 'wall' ? () => performance.now() : cpuNow
  const mesh = new Ed25519KeyPair(Buffer.alloc(32, 0xa0))
  const pool = Array.from({ length: 16 }, (_, i) => new Ed25519KeyPair(Buffer.alloc(32, 0xb0 + i)))
  const resource = `${mesh.did}/rooms/bench` as const
  const expected = { can: 'room/post', with: resource }

  // The ceiling: raw node:crypto verifications over the same pool, UCAN-sized payloads.
  const keyObjects: KeyObject[] = pool.map((k) =>
    createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, k.publicKey]), format: 'der', type: 'spki' }),
  )
  const payloads = pool.map((_, i) => Buffer.alloc(480, i))
  const signatures = pool.map((k, i) => k.sign(payloads[i] as Buffer))
  let rawNext = 0
  /** Milliseconds for `count` raw verifications. */
  const rawTime = (count: number): number => {
    const start = clock()
    for (let i = 0; i < count; i++) {
      const j = rawNext++ % pool.length
      if (!verify(null, payloads[j] as Buffer, keyObjects[j] as KeyObject, signatures[j] as Uint8Array)) {
        throw new Error('raw verify failed')
      }
    }
    return clock() - start
  }

  const now = Date.now()
  const exp = Math.floor(now / 1000) + 3600
  let nonce = 0
  const makeChain = async (depth: number, offset: number): Promise<string> => {
    let holder = mesh
    let proof: API.Delegation | undefined
    for (let i = 0; i < depth; i++) {
      const next = pool[(offset + i) % pool.length] as Ed25519KeyPair
      proof = await issueDelegation({
        issuer: holder,
        audience: next.did,
        capabilities: [{ can: 'room/post', with: mesh.did }],
        expiration: exp,
        proofs: proof === undefined ? [] : [proof],
        nonce: String(nonce++),
      })
      holder = next
    }
    return encodeToken(
      await issueInvocation({
        issuer: holder,
        audience: mesh.did,
        capability: expected,
        expiration: exp,
        proofs: proof === undefined ? [] : [proof],
      }),
    )
  }

  const stockOptions = {
    capability: parserOf('room/post'),
    authority: StockVerifier.parse(mesh.did as API.DID),
    principal: StockVerifier,
    validateAuthorization: () => ({ ok: {} }),
  }
  // Stock ucanto on the same bytes: extract (CAR decode), then access with the noble verifier.
  const stockOne = async (token: string) => {
    const extracted = await Delegation.extract(new Uint8Array(Buffer.from(token, 'base64url')))
    if (extracted.error) throw extracted.error
    const verdict = await access(extracted.ok as never, stockOptions as never)
    if (verdict.error) throw new Error(`stock ucanto refused a bench chain: ${verdict.error.message}`)
  }

  for (const depth of depths) {
    const n = chainsFor(depth)
    const tokens: string[] = []
    for (let i = 0; i < n; i++) tokens.push(await makeChain(depth, i))

    const fresh = new ChainVerifier({ resolver: new DidResolver(), cacheSize: 0 })
    const cached = new ChainVerifier({ resolver: new DidResolver() })
    const ours = async (verifier: ChainVerifier, list: string[]): Promise<number> => {
      const start = clock()
      for (const token of list) {
        const verdict = await verifier.verify(token, expected, { audience: mesh.did, now })
        if (verdict.error !== undefined) throw new Error(`bench chain refused: ${verdict.error.message}`)
      }
      return clock() - start
    }
    const stock = async (list: string[]): Promise<number> => {
      const start = clock()
      for (const token of list) await stockOne(token)
      return clock() - start
    }
    await ours(cached, tokens) // fills the cache: "cached" is the same chains seen again
    const missesBefore = cached.cacheStats().misses

    const measured: Round[] = []
    for (let r = 0; r <= rounds; r++) {
      let freshMs = 0
      let cachedMs = 0
      let rawMs = 0
      let stockMs = 0
      let stockCount = 0
      let slices = 0
      for (let i = 0; i < tokens.length; i += sliceSize) {
        const slice = tokens.slice(i, i + sliceSize)
        freshMs += await ours(fresh, slice)
        rawMs += rawTime(slice.length * (depth + 1))
        cachedMs += await ours(cached, slice)
        if (slices++ % stockEvery === 0) {
          const one = slice.slice(0, Math.max(1, Math.ceil(slice.length / 4)))
          stockMs += await stock(one)
          stockCount += one.length
        }
      }
      if (r === 0) continue // warm-up
      const raw = (tokens.length * (depth + 1)) / (rawMs / 1000)
      measured.push({
        fresh: tokens.length / (freshMs / 1000),
        cached: tokens.length / (cachedMs / 1000),
        stock: stockCount / (stockMs / 1000),
        ceiling: raw / (depth + 1),
        raw,
      })
    }
    // only the invocations (new on every real request, never cached) may miss
    if (cached.cacheStats().misses - missesBefore > tokens.length * (rounds + 1)) {
      throw new Error('the bench cache did not stay warm')
    }

    const f = medianRound(measured, (x) => x.fresh / x.ceiling)
    const s = medianRound(measured, (x) => x.fresh / x.stock)
    const c = medianRound(measured, (x) => x.cached / x.ceiling)
    const spread = (ratio: (x: Round) => number) =>
      measured
        .map(ratio)
        .sort((a, b) => a - b)
        .map((x) => x.toFixed(2))
        .join(' ')
    note(
      `authority d=${depth} (${init.clock ?? 'cpu'} time): fresh ${f.fresh.toFixed(0)}/s cached ${c.cached.toFixed(0)}/s stock ucanto ${s.stock.toFixed(0)}/s ceiling ${f.ceiling.toFixed(0)}/s (raw ${f.raw.toFixed(0)}/s); ` +
        `rounds fresh/ceiling [${spread((x) => x.fresh / x.ceiling)}] fresh/stock [${spread((x) => x.fresh / x.stock)}] cached/ceiling [${spread((x) => x.cached / x.ceiling)}]`,
    )
    yield result(`authority.chain_verify_fresh_vs_ceiling.d${depth}`, f.fresh, 'chains/s', f.ceiling, 0.5)
    yield result(`authority.chain_verify_fresh_vs_stock_ucanto.d${depth}`, s.fresh, 'chains/s', s.stock, 8)
    yield result(`authority.chain_verify_cached_vs_ceiling.d${depth}`, c.cached, 'chains/s', c.ceiling, 0.8)
  }
}

if (import.meta.main) {
  for await (const line of benchAuthority()) process.stdout.write(`${JSON.stringify(line)}\n`)
}
