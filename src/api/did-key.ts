import { base58btc } from 'multiformats/bases/base58'

/**
 * Ed25519 keys as the Mesh names them, browser-safe, for the node (node:crypto) and the
 * console (WebCrypto) alike: a did:key is the multicodec ed25519-pub (0xed, as an
 * unsigned varint) then the 32-byte public key, base58btc; a seed is imported as a
 * PKCS#8 key.
 */

export const DID_KEY_PREFIX = 'did:key:'

const ED25519_PUB_MULTICODEC = Uint8Array.of(0xed, 0x01)

// PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410) is this fixed prefix then the 32-byte seed.
export const PKCS8_ED25519_PREFIX = Uint8Array.of(
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
)

export function didFromPublicKey(publicKey: Uint8Array): string {
  const bytes = new Uint8Array(ED25519_PUB_MULTICODEC.byteLength + publicKey.byteLength)
  bytes.set(ED25519_PUB_MULTICODEC, 0)
  bytes.set(publicKey, ED25519_PUB_MULTICODEC.byteLength)
  return DID_KEY_PREFIX + base58btc.encode(bytes)
}

/** The PKCS#8 encoding of a 32-byte Ed25519 seed, as WebCrypto and node:crypto import it. */
export function pkcs8FromSeed(seed: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(PKCS8_ED25519_PREFIX.byteLength + seed.byteLength)
  out.set(PKCS8_ED25519_PREFIX, 0)
  out.set(seed, PKCS8_ED25519_PREFIX.byteLength)
  return out
}
