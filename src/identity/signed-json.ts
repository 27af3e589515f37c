import { BadRequestError } from '../errors.ts'
import { jcs } from './jcs.ts'
import type { Ed25519KeyPair } from './keys.ts'
import { verifySignature } from './keys.ts'

/**
 * RFC 8785 (JCS) canonical bytes of a JSON value, so that a signature made on one
 * node verifies on another whatever order the fields were written in.
 */
export function canonicalBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value))
}

/** The JCS text of a value (hash it as UTF-8: no lone surrogate gets through). */
export function canonicalJson(value: unknown): string {
  const text = jcs(value)
  if (text === undefined) throw new BadRequestError('value has no canonical JSON form')
  return text
}

/** Signs `payload` (without its signature field) and returns the base64url signature. */
export function signCanonical(key: Ed25519KeyPair, payload: unknown): string {
  return Buffer.from(key.sign(canonicalBytes(payload))).toString('base64url')
}

/** Verifies a base64url signature by `did` over the canonical form of `payload`. */
export function verifyCanonical(did: string, payload: unknown, signature: unknown): boolean {
  let bytes: Uint8Array
  try {
    bytes = canonicalBytes(payload)
  } catch {
    return false
  }
  return verifyBytes(did, bytes, signature)
}

/** `verifyCanonical` for a caller that has the canonical bytes already. */
export function verifyBytes(did: string, bytes: Uint8Array, signature: unknown): boolean {
  if (typeof signature !== 'string' || signature.length > 128) return false
  return verifySignature(did, bytes, Buffer.from(signature, 'base64url'))
}
