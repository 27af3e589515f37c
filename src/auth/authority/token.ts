/**
 * The wire form of a UCAN (a ucanto delegation or invocation with its proofs): the
 * base64url of its CAR archive (`Delegation.archive()`), so that it fits the HTTP
 * API's `ucan` field and an envelope's proofs.
 *
 * Decoding checks what a CAR reader does not: every block's bytes hash to its CID
 * (sha-256, dag-cbor), so a verified-delegation cache keyed by CID can never be fed
 * other bytes under a known CID.
 *
 * The hot path reads the CARv1 framing itself (varints, CIDv1, block bytes) instead of
 * @ipld/car + multiformats: no CID objects unless asked for, one native sha-256 per
 * block, and block keys formatted straight from the CID bytes (`cidString`, base32 as
 * `CID.toString()` formats a CIDv1). Anything else (a CARv2, a CIDv0) goes through the
 * library reader, whose result is checked the same way.
 */
import { createHash, hash, randomBytes } from 'node:crypto'
import type * as API from '@ucanto/interface'
import type { Ed25519KeyPair } from '../../identity/index.ts'
import { ucantoSigner } from './principal.ts'
import type { Result } from './result.ts'
import { ucantoCore } from './ucanto.ts'

export const TOKEN_LIMITS = Object.freeze({
  /** Largest encoded token accepted (characters). */
  maxEncodedLength: 96 * 1024,
  /** Most blocks in one token. */
  maxBlocks: 64,
})

const DAG_CBOR = 0x71
const SHA2_256 = 0x12

export type Block = { cid: API.Link; bytes: Uint8Array }

export interface DecodedToken {
  /** The root block (the invocation or delegation itself). */
  root: Block
  /** Every block of the archive by CID string, the root included. */
  blocks: Map<string, Block>
  /** The root's CID string (its key in `blocks`), when the decoder knows it. */
  rootKey?: string
}

export type TokenResult = Result<DecodedToken, { message: string }>

/** Encodes a delegation or invocation, with the proofs it embeds, for the wire. */
export async function encodeToken(delegation: API.Delegation): Promise<string> {
  const archived = await delegation.archive()
  if (archived.error) throw archived.error
  return Buffer.from(archived.ok).toString('base64url')
}

/**
 * Decodes a token and checks every block's hash; never throws, but for MESH_INTERNAL when
 * a token the lean reader leaves to the library finds ucanto unable to load.
 */
export function decodeToken(token: unknown): TokenResult {
  if (typeof token !== 'string' || token.length === 0 || token.length > TOKEN_LIMITS.maxEncodedLength) {
    return { error: { message: 'the token is not a string of acceptable length' } }
  }
  if (!BASE64URL.test(token)) return { error: { message: 'the token is not base64url' } }
  // its own allocation (not the shared Buffer pool): cached links keep their block's bytes
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(token, 'base64url'))
  if (bytes.write(token, 'base64url') !== bytes.length)
    return { error: { message: 'the token is not base64url' } }
  const lean = readCarV1(bytes)
  if (lean === undefined) return decodeWithLibrary(bytes)
  if ('error' in lean) return lean
  const { roots, blocks } = lean
  const variant = roots.length === 1 ? blocks.get(roots[0] as string) : undefined
  if (variant === undefined) return { error: { message: 'the token has no single intact root' } }
  return rootOf(variant, blocks)
}

const BASE64URL = /^[A-Za-z0-9_-]+$/

function rootOf(variant: Block, blocks: Map<string, Block>): TokenResult {
  const known = cidAfter(VARIANT_PREFIX, variant.bytes, 0)
  if (known !== undefined && known.end === variant.bytes.length) {
    const root = blocks.get(known.key)
    if (root === undefined) return { error: { message: 'the token root is not a ucan@0.9.1 delegation' } }
    return { ok: { root, blocks, rootKey: known.key } }
  }
  let link: API.Link | undefined
  const { CBOR } = ucantoCore() // outside the try: failing to load is MESH_INTERNAL
  try {
    const value = CBOR.decode(variant.bytes) as Record<string, API.Link>
    link = value['ucan@0.9.1']
  } catch {
    link = undefined
  }
  const rootKey = link === undefined ? undefined : linkString(link)
  const root = rootKey === undefined ? undefined : blocks.get(rootKey)
  if (root === undefined) return { error: { message: 'the token root is not a ucan@0.9.1 delegation' } }
  return { ok: { root, blocks, rootKey } }
}

/** The former path (@ipld/car), for archives the lean reader leaves aside. */
function decodeWithLibrary(bytes: Uint8Array): TokenResult {
  let decoded: { roots: Block[]; blocks: Map<string, Block> }
  const { CAR } = ucantoCore() // outside the try: failing to load is MESH_INTERNAL
  try {
    decoded = CAR.decode(new Uint8Array(bytes)) as unknown as typeof decoded
  } catch (err) {
    return { error: { message: `the token is not a CAR archive: ${(err as Error).message}` } }
  }
  if (decoded.blocks.size > TOKEN_LIMITS.maxBlocks) {
    return { error: { message: `the token holds more than ${TOKEN_LIMITS.maxBlocks} blocks` } }
  }
  for (const block of decoded.blocks.values()) {
    if (!blockIntact(block)) return { error: { message: `block ${block.cid} does not match its CID` } }
  }
  const variant = decoded.roots[0]
  if (variant === undefined || decoded.roots.length !== 1 || !blockIntact(variant)) {
    return { error: { message: 'the token has no single intact root' } }
  }
  return rootOf(variant, decoded.blocks)
}

/** A block read by the lean reader: its CID object is only built when asked for. */
class CarBlock {
  readonly bytes: Uint8Array
  readonly #cidBytes: Uint8Array
  #cid: API.Link | undefined

  constructor(cidBytes: Uint8Array, bytes: Uint8Array) {
    this.#cidBytes = cidBytes
    this.bytes = bytes
  }

  get cid(): API.Link {
    this.#cid ??= ucantoCore().decodeLink(this.#cidBytes) as API.Link
    return this.#cid
  }
}

type CarRead = { roots: string[]; blocks: Map<string, Block> } | { error: { message: string } }

/**
 * Reads a CARv1 archive whose blocks are all CIDv1, dag-cbor, sha2-256 and intact.
 * `undefined` when the archive is not a CARv1 of CIDv1 blocks (the library decides).
 */
function readCarV1(bytes: Buffer): CarRead | undefined {
  const header = varint(bytes, 0)
  if (header === undefined) return { error: { message: 'the token is not a CAR archive: truncated header' } }
  let offset = header.next + header.value
  if (header.value === 0 || offset > bytes.length) {
    return { error: { message: 'the token is not a CAR archive: truncated header' } }
  }
  const roots = headerRoots(bytes, header.next, offset)
  if (roots === undefined || 'error' in roots) return roots
  const blocks = new Map<string, Block>()
  let count = 0
  while (offset < bytes.length) {
    const section = varint(bytes, offset)
    if (section === undefined || section.value === 0 || section.next + section.value > bytes.length) {
      return { error: { message: 'the token is not a CAR archive: truncated section' } }
    }
    const end = section.next + section.value
    // CIDv1: version, codec, multihash code, digest length, digest
    const version = varint(bytes, section.next, end)
    if (version === undefined) return { error: { message: 'the token is not a CAR archive: bad CID' } }
    if (version.value !== 1) return undefined // a CIDv0 (0x12 0x20 …): the library reader
    const codec = varint(bytes, version.next, end)
    const hashCode = codec && varint(bytes, codec.next, end)
    const length = hashCode && varint(bytes, hashCode.next, end)
    if (
      codec === undefined ||
      hashCode === undefined ||
      length === undefined ||
      length.next + length.value > end
    ) {
      return { error: { message: 'the token is not a CAR archive: bad CID' } }
    }
    const digestEnd = length.next + length.value
    const cidBytes = bytes.subarray(section.next, digestEnd)
    const key = cidString(cidBytes)
    if (++count > TOKEN_LIMITS.maxBlocks) {
      return { error: { message: `the token holds more than ${TOKEN_LIMITS.maxBlocks} blocks` } }
    }
    const block = bytes.subarray(digestEnd, end)
    if (
      codec.value !== DAG_CBOR ||
      hashCode.value !== SHA2_256 ||
      length.value !== 32 ||
      !hash('sha256', block, 'buffer').equals(bytes.subarray(length.next, digestEnd))
    ) {
      return { error: { message: `block ${key} does not match its CID` } }
    }
    blocks.set(key, new CarBlock(cidBytes, block))
    offset = end
  }
  return { roots, blocks }
}

/** The roots' keys of a CARv1 header; undefined when it is not a CARv1 of CIDv1 roots. */
function headerRoots(
  bytes: Uint8Array,
  start: number,
  end: number,
): string[] | { error: { message: string } } | undefined {
  // what encodeToken writes: {roots: [one CIDv1 dag-cbor sha2-256], version: 1}
  const known = cidAfter(HEADER_PREFIX, bytes, start)
  if (
    known !== undefined &&
    known.end + HEADER_SUFFIX.length === end &&
    matches(HEADER_SUFFIX, bytes, known.end)
  ) {
    return [known.key]
  }
  const { CBOR } = ucantoCore() // outside the try: failing to load is MESH_INTERNAL
  try {
    const value = CBOR.decode(bytes.subarray(start, end)) as {
      version?: unknown
      roots?: unknown
    }
    if (value === null || typeof value !== 'object' || value.version !== 1) return undefined
    if (!Array.isArray(value.roots) || Object.keys(value).length !== 2) {
      return { error: { message: 'the token is not a CAR archive: malformed header' } }
    }
    const roots: string[] = []
    for (const root of value.roots as unknown[]) {
      const link = root as { asCID?: unknown; version?: unknown }
      if (link === null || typeof link !== 'object' || link.asCID !== link) {
        return { error: { message: 'the token is not a CAR archive: malformed header' } }
      }
      if (link.version !== 1) return undefined
      roots.push(linkString(link as unknown as API.Link))
    }
    return roots
  } catch (err) {
    return { error: { message: `the token is not a CAR archive: ${(err as Error).message}` } }
  }
}

/** An unsigned LEB128 varint (at most 7 bytes, minimal), or undefined when malformed. */
function varint(
  bytes: Uint8Array,
  offset: number,
  end = bytes.length,
): { value: number; next: number } | undefined {
  let value = 0
  let shift = 1
  for (let i = offset; i < end && i < offset + 7; i++) {
    const byte = bytes[i] as number
    value += (byte & 0x7f) * shift
    if (byte < 0x80) {
      if (byte === 0 && i > offset) return undefined // not minimal
      return { value, next: i + 1 }
    }
    shift *= 128
  }
  return undefined
}

// dag-cbor framing around one CID (tag 42, bytes of 37: 0x00 then the 36-byte CIDv1), as
// the CAR header and the ucanto variant block encode it. Written out rather than encoded
// at import, so that this file loads no ucanto (issue 15); test/auth/token-framing.test.ts
// checks them against dag-cbor's encoding.
const SAMPLE_CID = new Uint8Array([0x01, DAG_CBOR, SHA2_256, 0x20, ...new Uint8Array(32)])
const CID_FRAME = [0xd8, 0x2a, 0x58, 0x25, 0x00]
const ascii = (text: string): number[] => [...Buffer.from(text, 'latin1')]
/** `{roots: [cid], version: 1}`: map(2), "roots", array(1), the CID, "version", 1. */
const HEADER_PREFIX = Uint8Array.from([0xa2, 0x65, ...ascii('roots'), 0x81, ...CID_FRAME])
const HEADER_SUFFIX = Uint8Array.from([0x67, ...ascii('version'), 0x01])
/** `{'ucan@0.9.1': cid}`: map(1), "ucan@0.9.1", the CID. */
const VARIANT_PREFIX = Uint8Array.from([0xa1, 0x6a, ...ascii('ucan@0.9.1'), ...CID_FRAME])
/** The framings above, for the test that checks them. */
export const CID_FRAMINGS = { SAMPLE_CID, HEADER_PREFIX, HEADER_SUFFIX, VARIANT_PREFIX }

function matches(expected: Uint8Array, bytes: Uint8Array, offset: number): boolean {
  if (offset + expected.length > bytes.length) return false
  for (let i = 0; i < expected.length; i++) if (bytes[offset + i] !== expected[i]) return false
  return true
}

/** The key of a CIDv1 (dag-cbor, sha2-256) framed after `prefix` at `offset`, and where it ends. */
function cidAfter(
  prefix: Uint8Array,
  bytes: Uint8Array,
  offset: number,
): { key: string; end: number } | undefined {
  if (!matches(prefix, bytes, offset)) return undefined
  const start = offset + prefix.length
  const end = start + SAMPLE_CID.length
  if (end > bytes.length) return undefined
  for (let i = 0; i < 4; i++) if (bytes[start + i] !== SAMPLE_CID[i]) return undefined
  return { key: cidString(bytes.subarray(start, end)), end }
}

const BASE32_CODES = Buffer.from('abcdefghijklmnopqrstuvwxyz234567', 'latin1')
const LATIN1 = new TextDecoder('latin1')

/** A CIDv1's string form from its bytes: multibase base32 ('b', lower case, unpadded), as `CID.toString()`. */
export function cidString(bytes: Uint8Array): string {
  const out = new Uint8Array(1 + Math.ceil((bytes.length * 8) / 5))
  out[0] = 0x62 // 'b'
  let n = 1
  let buffer = 0
  let bits = 0
  for (let i = 0; i < bytes.length; i++) {
    buffer = ((buffer << 8) | (bytes[i] as number)) & 0xffff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out[n++] = BASE32_CODES[(buffer >>> bits) & 31] as number
    }
  }
  if (bits > 0) out[n++] = BASE32_CODES[(buffer << (5 - bits)) & 31] as number
  return LATIN1.decode(out)
}

/** A link's string key: `cidString` for a CIDv1, the library's format otherwise. */
export function linkString(link: API.Link): string {
  return link.version === 1 ? cidString(link.bytes) : link.toString()
}

/** True when the block is dag-cbor, hashed with sha-256, and its bytes hash to its CID. */
export function blockIntact(block: Block): boolean {
  const cid = block.cid as unknown as { code: number; multihash: { code: number; digest: Uint8Array } }
  if (cid.code !== DAG_CBOR || cid.multihash.code !== SHA2_256) return false
  const digest = createHash('sha256').update(block.bytes).digest()
  return Buffer.compare(digest, cid.multihash.digest) === 0
}

/** A ucanto view of a decoded token's root (its proofs resolved from the same archive). */
export function viewOf(decoded: DecodedToken): API.Delegation {
  return ucantoCore().Delegation.create({
    root: decoded.root as API.UCANBlock,
    blocks: decoded.blocks as never,
  })
}

/** One capability: an ability on a resource, with its caveats. */
export interface CapabilityInput {
  can: string
  /** The resource acted on, e.g. the mesh did or `<mesh did>/rooms/<id>`. */
  with: string
  /** Caveats, e.g. `{peer}`; a verifier expects exactly these values. */
  nb?: Record<string, unknown>
}

export interface IssueOptions {
  /** The signing key (a human's, an agent's or the mesh's). */
  issuer: Ed25519KeyPair
  /** The did the delegation or invocation is addressed to. */
  audience: string
  /** Seconds since the epoch; required: every link of a chain must expire. */
  expiration: number
  notBefore?: number
  /** Proofs to embed (delegations, or links to ones the verifier knows). */
  proofs?: API.Proof[]
  nonce?: string
}

/** Issues a delegation of `capabilities` (client side: the CLI, tests, an agent). */
export async function issueDelegation(
  options: IssueOptions & { capabilities: CapabilityInput[] },
): Promise<API.Delegation> {
  return ucantoCore().delegate({
    issuer: ucantoSigner(options.issuer),
    audience: { did: () => options.audience as API.DID },
    capabilities: options.capabilities as unknown as API.Capabilities,
    expiration: options.expiration,
    ...(options.notBefore === undefined ? {} : { notBefore: options.notBefore }),
    ...(options.nonce === undefined ? {} : { nonce: options.nonce }),
    proofs: options.proofs ?? [],
  })
}

/** Issues an invocation of one capability (client side), with a fresh nonce. */
export async function issueInvocation(
  options: IssueOptions & { capability: CapabilityInput },
): Promise<API.Invocation> {
  const invocation = ucantoCore().invoke({
    issuer: ucantoSigner(options.issuer),
    audience: { did: () => options.audience as API.DID },
    capability: options.capability as unknown as API.Capability,
    expiration: options.expiration,
    ...(options.notBefore === undefined ? {} : { notBefore: options.notBefore }),
    nonce: options.nonce ?? randomBytes(16).toString('base64url'),
    proofs: options.proofs ?? [],
  })
  return (await invocation.delegate()) as unknown as API.Invocation
}
