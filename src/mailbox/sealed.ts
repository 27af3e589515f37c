import { hkdfSync, randomBytes } from 'node:crypto'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { ed25519, x25519 } from '@noble/curves/ed25519.js'
import { BadRequestError, SignatureMismatchError } from '../errors.ts'
import { type Ed25519KeyPair, publicKeyFromDid } from '../identity/index.ts'

/**
 * A sealed box to a mesh key, in the libsodium `crypto_box_seal` style (an anonymous
 * sender, a fresh ephemeral X25519 key per box), over the X25519 key birationally
 * derived from the recipient's Ed25519 key (@noble/curves `toMontgomery`):
 *
 * ```
 * sealed = epk (32) ‖ nonce (24) ‖ XChaCha20-Poly1305(key, nonce, plaintext, aad = epk ‖ rpk)
 * key    = HKDF-SHA256(ikm = X25519(esk, rpk), salt = epk ‖ rpk, info = "mesh/mailbox/1 sealed")
 * ```
 *
 * Only the holder of the recipient's seed opens it; whoever carries it (the relay) learns
 * its length and nothing else. The sender is not authenticated by the box: a mailbox item
 * is signed by its origin over the sealed bytes (mailbox/item.ts).
 */
const INFO = new TextEncoder().encode('mesh/mailbox/1 sealed')
const EPK = 32
const NONCE = 24
/** Bytes a sealed box adds to its plaintext. */
export const SEALED_OVERHEAD = EPK + NONCE + 16

function boxKey(shared: Uint8Array, epk: Uint8Array, rpk: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', shared, concat(epk, rpk), INFO, 32))
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a, 0)
  out.set(b, a.byteLength)
  return out
}

/** Seals `plaintext` to the mesh key `recipientDid` (an Ed25519 did:key). */
export function seal(recipientDid: string, plaintext: Uint8Array): Uint8Array {
  const rpk = ed25519.utils.toMontgomery(publicKeyFromDid(recipientDid))
  const esk = x25519.utils.randomSecretKey()
  const epk = x25519.getPublicKey(esk)
  const nonce = randomBytes(NONCE)
  const key = boxKey(x25519.getSharedSecret(esk, rpk), epk, rpk)
  const body = xchacha20poly1305(key, nonce, concat(epk, rpk)).encrypt(plaintext)
  const out = new Uint8Array(EPK + NONCE + body.byteLength)
  out.set(epk, 0)
  out.set(nonce, EPK)
  out.set(body, EPK + NONCE)
  return out
}

/**
 * Opens a box sealed to `key`; MESH_BAD_REQUEST when it is too short, MESH_SIGNATURE_MISMATCH
 * when it was not sealed to this key or was altered (the Poly1305 tag fails).
 */
export function open(key: Ed25519KeyPair, sealed: Uint8Array): Uint8Array {
  if (sealed.byteLength < SEALED_OVERHEAD) throw new BadRequestError('sealed box is too short')
  const epk = sealed.subarray(0, EPK)
  const nonce = sealed.subarray(EPK, EPK + NONCE)
  const rpk = ed25519.utils.toMontgomery(key.publicKey)
  try {
    const shared = x25519.getSharedSecret(ed25519.utils.toMontgomerySecret(key.seed), epk)
    return xchacha20poly1305(boxKey(shared, epk, rpk), nonce, concat(epk, rpk)).decrypt(
      sealed.subarray(EPK + NONCE),
    )
  } catch {
    throw new SignatureMismatchError('sealed box does not open with this mesh key')
  }
}
