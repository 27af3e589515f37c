import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign, verify } from 'node:crypto'
import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { base58btc } from 'multiformats/bases/base58'
import { DID_KEY_PREFIX, didFromPublicKey, pkcs8FromSeed } from '../api/did-key.ts'
import { BadRequestError } from '../errors.ts'

// DER framing for a raw 32-byte Ed25519 seed (api/did-key.ts) / public key (RFC 8410),
// so that node:crypto (OpenSSL) does the signing and verifying: ~15× faster than pure JS.
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

export { didFromPublicKey }

/** An Ed25519 key pair: one seed is the mesh's (or a human's) did:key and libp2p PeerId. */
export class Ed25519KeyPair {
  readonly seed: Uint8Array
  readonly publicKey: Uint8Array
  readonly did: string
  readonly #privateKey: KeyObject

  constructor(seed: Uint8Array) {
    if (seed.byteLength !== 32) throw new BadRequestError('an Ed25519 seed is 32 bytes')
    this.seed = Uint8Array.from(seed)
    this.#privateKey = createPrivateKey({
      key: Buffer.from(pkcs8FromSeed(this.seed)),
      format: 'der',
      type: 'pkcs8',
    })
    const spki = createPublicKey(this.#privateKey).export({ format: 'der', type: 'spki' })
    this.publicKey = Uint8Array.from(spki.subarray(SPKI_ED25519_PREFIX.byteLength))
    this.did = didFromPublicKey(this.publicKey)
  }

  static generate(): Ed25519KeyPair {
    return new Ed25519KeyPair(randomBytes(32))
  }

  sign(data: Uint8Array): Uint8Array {
    return sign(null, data, this.#privateKey)
  }

  /** The same key as libp2p sees it (its PeerId is derived from the same public key). */
  toLibp2pPrivateKey(): PrivateKey {
    const raw = new Uint8Array(64)
    raw.set(this.seed, 0)
    raw.set(this.publicKey, 32)
    return privateKeyFromRaw(raw)
  }

  peerId(): PeerId {
    return peerIdFromPrivateKey(this.toLibp2pPrivateKey())
  }
}

/** The raw Ed25519 public key inside a did:key; throws MESH_BAD_REQUEST for anything else. */
export function publicKeyFromDid(did: string): Uint8Array {
  if (typeof did !== 'string' || !did.startsWith(`${DID_KEY_PREFIX}z`) || did.length > 128) {
    throw new BadRequestError('not an Ed25519 did:key', { did })
  }
  let bytes: Uint8Array
  try {
    bytes = base58btc.decode(did.slice(DID_KEY_PREFIX.length))
  } catch {
    throw new BadRequestError('did:key is not valid base58btc', { did })
  }
  if (bytes.byteLength !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) {
    throw new BadRequestError('did:key is not an Ed25519 public key', { did })
  }
  return bytes.subarray(2)
}

// Every entry of every room update names dids (shape checks, issue 15): decoding each
// (base58) cost more than the rest of a shape check. The valid ones seen lately are kept;
// a flood of new ones only clears the set.
const validDids = new Set<string>()
const VALID_DIDS_MAX = 4096

export function isDidKey(did: unknown): did is string {
  if (typeof did !== 'string') return false
  if (validDids.has(did)) return true
  try {
    publicKeyFromDid(did)
  } catch {
    return false
  }
  if (validDids.size >= VALID_DIDS_MAX) validDids.clear()
  validDids.add(did)
  return true
}

// Parsing a DER key is the costly part of a verification; hot DIDs are kept.
const publicKeyCache = new Map<string, KeyObject>()
const PUBLIC_KEY_CACHE_MAX = 4096

export function publicKeyObject(did: string): KeyObject {
  let key = publicKeyCache.get(did)
  if (key === undefined) {
    key = createPublicKey({
      key: Buffer.concat([SPKI_ED25519_PREFIX, publicKeyFromDid(did)]),
      format: 'der',
      type: 'spki',
    })
    if (publicKeyCache.size >= PUBLIC_KEY_CACHE_MAX) publicKeyCache.clear()
    publicKeyCache.set(did, key)
  }
  return key
}

/** True when `signature` is `did`'s Ed25519 signature over `data`; false for any malformed input. */
export function verifySignature(did: string, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.byteLength !== 64) return false
  let key: KeyObject
  try {
    key = publicKeyObject(did)
  } catch {
    return false
  }
  return verify(null, data, key, signature)
}
