import { createHash } from 'node:crypto'
import type { AbortOptions } from '@libp2p/interface'

/**
 * The admission stamp of a new mesh (hashcash): a registry lists a did it has never
 * seen only if the heartbeat carries `pow`, a nonce such that
 *
 * ```
 * sha256(UTF-8 "mesh-heartbeat-pow/v1:" + did + ":" + pow)
 * ```
 *
 * starts with at least the registry's `powBits` zero bits. The stamp names the did, so
 * it is paid once per key (the node keeps it and may send it in every heartbeat), and
 * costs 2^powBits hashes on average to find but one hash to check. Known meshes
 * heartbeat without it.
 */

/** The registry's default difficulty: about a million hashes, a second or two of one core. */
export const DEFAULT_POW_BITS = 20

/** A registry asks at most this much; a client refuses to work for more. */
export const MAX_POW_BITS = 32

/** Nonces are short base36 counters; the schema bounds what a heartbeat may carry. */
export const POW_NONCE_MAX_LENGTH = 32

const PREFIX = 'mesh-heartbeat-pow/v1:'

/** Leading zero bits of sha256 over the stamp's text. */
export function powZeroBits(did: string, nonce: string): number {
  const digest = createHash('sha256').update(`${PREFIX}${did}:${nonce}`).digest()
  let bits = 0
  for (const byte of digest) {
    if (byte === 0) {
      bits += 8
      continue
    }
    return bits + Math.clz32(byte) - 24
  }
  return bits
}

/** Whether `nonce` is a stamp of at least `bits` for `did`. */
export function checkPow(did: string, nonce: string | undefined, bits: number): boolean {
  if (bits <= 0) return true
  return nonce !== undefined && nonce.length <= POW_NONCE_MAX_LENGTH && powZeroBits(did, nonce) >= bits
}

/**
 * Finds a stamp of `bits` for `did`. Hashes in slices and yields to the event loop
 * between them, so a node computing its stamp keeps serving; the signal cuts it short.
 */
export async function computePow(did: string, bits: number, options: AbortOptions = {}): Promise<string> {
  if (!Number.isInteger(bits) || bits < 0 || bits > MAX_POW_BITS) {
    throw new RangeError(`pow bits must be an integer from 0 to ${MAX_POW_BITS}`)
  }
  const SLICE = 4_096
  for (let counter = 0; ; ) {
    options.signal?.throwIfAborted()
    for (const end = counter + SLICE; counter < end; counter++) {
      const nonce = counter.toString(36)
      if (powZeroBits(did, nonce) >= bits) return nonce
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
}
