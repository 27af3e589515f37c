import { createHash, type Hash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

/** Multicodec codes: a file is addressed as its raw bytes hashed with sha-256. */
const RAW_CODE = 0x55
const SHA256_CODE = 0x12

/** The CID (v1, raw, sha-256, base32 `bafkrei…`) of a sha-256 digest. */
export function cidOfDigest(digest: Uint8Array): string {
  return CID.create(1, RAW_CODE, Digest.create(SHA256_CODE, digest)).toString()
}

/** The CID of whole bytes (tests, small blobs). */
export function cidOf(bytes: Uint8Array): string {
  return cidOfDigest(createHash('sha256').update(bytes).digest())
}

/** A running sha-256 that ends in a CID. */
export function cidHasher(): { hash: Hash; cid: () => string } {
  const hash = createHash('sha256')
  return { hash, cid: () => cidOfDigest(hash.digest()) }
}

/**
 * Whether `value` is a CID this node stores: v1, raw, sha-256 of 32 bytes, in its
 * canonical base32 spelling (so that one file has one name, and a name is a safe file name).
 */
export function isFileCid(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > 100 || !/^b[a-z2-7]+$/.test(value)) return false
  try {
    const cid = CID.parse(value)
    return (
      cid.version === 1 &&
      cid.code === RAW_CODE &&
      cid.multihash.code === SHA256_CODE &&
      cid.multihash.size === 32 &&
      cid.toString() === value
    )
  } catch {
    return false
  }
}
