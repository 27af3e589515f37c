import { type KeyObject, verify } from 'node:crypto'
import { publicKeyObject } from './keys.ts'
import { onPool } from './pool.ts'

/**
 * Ed25519 verification on libuv's thread pool (issue 15, verify15): node:crypto's
 * `verify` with a callback runs OpenSSL there, so the main thread only queues the job
 * and reads its answer (≈ 5 µs of its time instead of ≈ 60–90 µs a signature). Same
 * answer as `verifySignature`, about the same CPU (on another core), later. At most a
 * few at once in the pool (pool.ts).
 */

/** One signature to check: `did`'s Ed25519 signature over `data`. */
export interface PoolCheck {
  did: string
  data: Uint8Array
  signature: Uint8Array
}

/**
 * `verifySignature` of each check, answered from the pool, in the order given; false for
 * any malformed input (never rejects).
 */
export function verifyOnPool(checks: readonly PoolCheck[]): Promise<boolean[]> {
  const answers = new Array<boolean>(checks.length).fill(false)
  if (checks.length === 0) return Promise.resolve(answers)
  return new Promise((resolve) => {
    let left = checks.length
    const answered = (i: number, ok: boolean) => {
      answers[i] = ok
      if (--left === 0) resolve(answers)
    }
    checks.forEach((check, i) => {
      let key: KeyObject
      try {
        if (check.signature.byteLength !== 64) throw new Error('not an Ed25519 signature')
        key = publicKeyObject(check.did)
      } catch {
        answered(i, false)
        return
      }
      onPool((done) => {
        try {
          verify(null, check.data, key, check.signature, (err, ok) => {
            done()
            answered(i, err === null && ok)
          })
        } catch {
          done()
          answered(i, false)
        }
      })
    })
  })
}
