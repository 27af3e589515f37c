import { type KeyObject, verify } from 'node:crypto'
import { publicKeyObject } from './keys.ts'

/**
 * Ed25519 verification on libuv's thread pool (issue 15, verify15): node:crypto's
 * `verify` with a callback runs OpenSSL there, so the main thread only queues the job
 * and reads its answer. Same answer as `verifySignature`, the same CPU (on another
 * core), later.
 *
 * The pool is shared with the file system and LevelDB (classic-level's reads, writes and
 * fsyncs run there too): at most `MAX_IN_POOL` verifications are queued in it at once,
 * the rest wait here in order, so a catch-up chunk of a thousand seals never stands
 * between the store and its next write for longer than a few verifications.
 */
const MAX_IN_POOL = 3

let inPool = 0
const waiting: Array<() => void> = []

function next(): void {
  inPool--
  waiting.shift()?.()
}

/** `verifySignature`, answered from the pool; false for any malformed input (never rejects). */
export function verifySignatureOnPool(
  did: string,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  if (signature.byteLength !== 64) return Promise.resolve(false)
  let key: KeyObject
  try {
    key = publicKeyObject(did)
  } catch {
    return Promise.resolve(false)
  }
  return new Promise((resolve) => {
    const run = () => {
      inPool++
      try {
        verify(null, data, key, signature, (err, ok) => {
          next()
          resolve(err === null && ok)
        })
      } catch {
        next()
        resolve(false)
      }
    }
    if (inPool < MAX_IN_POOL) run()
    else waiting.push(run)
  })
}
