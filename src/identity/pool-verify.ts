import { type KeyObject, verify } from 'node:crypto'
import { publicKeyObject } from './keys.ts'

/**
 * Ed25519 verification on libuv's thread pool (issue 15, verify15): node:crypto's
 * `verify` with a callback runs OpenSSL there, so the main thread only queues the job
 * and reads its answer (≈ 5 µs of its time instead of ≈ 60–90 µs a signature). Same
 * answer as `verifySignature`, about the same CPU (on another core), later.
 *
 * The pool is shared with the file system and LevelDB (classic-level's reads, writes and
 * fsyncs run there too): at most `MAX_IN_POOL` verifications are queued in it at once,
 * the rest wait here in order, so a catch-up chunk of a thousand seals never stands
 * between the store and its next write for longer than a few verifications.
 */
const MAX_IN_POOL = 8

let inPool = 0
const waiting: Array<() => void> = []

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
      const run = () => {
        inPool++
        try {
          verify(null, check.data, key, check.signature, (err, ok) => {
            next()
            answered(i, err === null && ok)
          })
        } catch {
          next()
          answered(i, false)
        }
      }
      if (inPool < MAX_IN_POOL) run()
      else waiting.push(run)
    })
  })
}

function next(): void {
  inPool--
  waiting.shift()?.()
}
