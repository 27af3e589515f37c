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
  roomPost,
} from '../../src/auth/authority/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import type { BenchResult, Better } from './report.ts'
import { note, round } from './report.ts'

export interface AuthorityBenchInit {
  depths?: number[]
  /** Chains per depth; default 160 / (depth + 1) × 6, at least 40. */
  chains?: (depth: number) => number
  /** Raw verifications per ceiling sample; default 4 000. */
  rawSamples?: number
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

export async function* benchAuthority(init: AuthorityBenchInit = {}): AsyncGenerator<BenchResult> {
  const depths = init.depths ?? [1, 2, 4, 8]
  const chainsFor = init.chains ?? ((d: number) => Math.max(40, Math.round((160 / (d + 1)) * 6)))
  const rawSamples = init.rawSamples ?? 4_000
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
  const rawRate = (): number => {
    const start = performance.now()
    for (let i = 0; i < rawSamples; i++) {
      const j = i % pool.length
      if (!verify(null, payloads[j] as Buffer, keyObjects[j] as KeyObject, signatures[j] as Uint8Array)) {
        throw new Error('raw verify failed')
      }
    }
    return rawSamples / ((performance.now() - start) / 1000)
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

  for (const depth of depths) {
    const n = chainsFor(depth)
    const tokens: string[] = []
    for (let i = 0; i < n; i++) tokens.push(await makeChain(depth, i))
    const warm: string[] = []
    for (let i = 0; i < 10; i++) warm.push(await makeChain(depth, i + 7))

    const fresh = new ChainVerifier({ resolver: new DidResolver(), cacheSize: 0 })
    const cached = new ChainVerifier({ resolver: new DidResolver() })
    const run = async (verifier: ChainVerifier, list: string[]): Promise<number> => {
      const start = performance.now()
      for (const token of list) {
        const verdict = await verifier.verify(token, expected, { audience: mesh.did, now })
        if (verdict.error !== undefined) throw new Error(`bench chain refused: ${verdict.error.message}`)
      }
      return list.length / ((performance.now() - start) / 1000)
    }
    await run(fresh, warm)
    const rawBefore = rawRate()
    const freshRate = await run(fresh, tokens)
    await run(cached, tokens) // warms the cache
    const cachedRate = await run(cached, tokens)
    const rawAfter = rawRate()
    const raw = (rawBefore + rawAfter) / 2
    const ceiling = raw / (depth + 1)

    // Stock ucanto on the same bytes: extract, then access with the noble verifier.
    const stockList = tokens.slice(0, Math.max(20, Math.round(n / 4)))
    const stockOptions = {
      capability: roomPost,
      authority: StockVerifier.parse(mesh.did as API.DID),
      principal: StockVerifier,
      validateAuthorization: () => ({ ok: {} }),
    }
    const stockOne = async (token: string) => {
      const extracted = await Delegation.extract(new Uint8Array(Buffer.from(token, 'base64url')))
      if (extracted.error) throw extracted.error
      const verdict = await access(extracted.ok as never, stockOptions as never)
      if (verdict.error) throw new Error(`stock ucanto refused a bench chain: ${verdict.error.message}`)
    }
    for (const token of warm.slice(0, 3)) await stockOne(token)
    const stockStart = performance.now()
    for (const token of stockList) await stockOne(token)
    const stockRate = stockList.length / ((performance.now() - stockStart) / 1000)

    note(
      `authority d=${depth}: fresh ${freshRate.toFixed(0)}/s cached ${cachedRate.toFixed(0)}/s stock ucanto ${stockRate.toFixed(0)}/s ceiling ${ceiling.toFixed(0)}/s (raw ${raw.toFixed(0)}/s)`,
    )
    yield result(`authority.chain_verify_fresh_vs_ceiling.d${depth}`, freshRate, 'chains/s', ceiling, 0.5)
    yield result(
      `authority.chain_verify_fresh_vs_stock_ucanto.d${depth}`,
      freshRate,
      'chains/s',
      stockRate,
      8,
    )
    yield result(`authority.chain_verify_cached_vs_ceiling.d${depth}`, cachedRate, 'chains/s', ceiling, 0.8)
  }
}

if (import.meta.main) {
  for await (const line of benchAuthority()) process.stdout.write(`${JSON.stringify(line)}\n`)
}
