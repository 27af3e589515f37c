/**
 * The wire form of a UCAN (a ucanto delegation or invocation with its proofs): the
 * base64url of its CAR archive (`Delegation.archive()`), so that it fits the HTTP
 * API's `ucan` field and an envelope's proofs, where the interim human acts travelled.
 *
 * Decoding checks what a CAR reader does not: every block's bytes hash to its CID
 * (sha-256, dag-cbor), so a verified-delegation cache keyed by CID can never be fed
 * other bytes under a known CID.
 */
import { createHash, randomBytes } from 'node:crypto'
import { CAR, CBOR, Delegation, delegate as ucantoDelegate, invoke as ucantoInvoke } from '@ucanto/core'
import type * as API from '@ucanto/interface'
import type { Ed25519KeyPair } from '../../identity/index.ts'
import { ucantoSigner } from './principal.ts'
import type { Result } from './result.ts'

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
}

export type TokenResult = Result<DecodedToken, { message: string }>

/** Encodes a delegation or invocation, with the proofs it embeds, for the wire. */
export async function encodeToken(delegation: API.Delegation): Promise<string> {
  const archived = await delegation.archive()
  if (archived.error) throw archived.error
  return Buffer.from(archived.ok).toString('base64url')
}

/** Decodes a token and checks every block's hash; never throws. */
export function decodeToken(token: unknown): TokenResult {
  if (typeof token !== 'string' || token.length === 0 || token.length > TOKEN_LIMITS.maxEncodedLength) {
    return { error: { message: 'the token is not a string of acceptable length' } }
  }
  if (!/^[A-Za-z0-9_-]+$/.test(token)) return { error: { message: 'the token is not base64url' } }
  let decoded: { roots: Block[]; blocks: Map<string, Block> }
  try {
    decoded = CAR.decode(new Uint8Array(Buffer.from(token, 'base64url'))) as unknown as typeof decoded
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
  let link: API.Link | undefined
  try {
    const value = CBOR.decode(variant.bytes) as Record<string, API.Link>
    link = value['ucan@0.9.1']
  } catch {
    link = undefined
  }
  const root = link === undefined ? undefined : decoded.blocks.get(link.toString())
  if (root === undefined) return { error: { message: 'the token root is not a ucan@0.9.1 delegation' } }
  return { ok: { root, blocks: decoded.blocks } }
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
  return Delegation.create({ root: decoded.root as API.UCANBlock, blocks: decoded.blocks as never })
}

export interface CapabilityInput {
  can: string
  with: string
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
  return ucantoDelegate({
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
  const invocation = ucantoInvoke({
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
