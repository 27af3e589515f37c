import type * as API from '@ucanto/interface'
import { fromBase64url, toBase64url } from './base64url.ts'

/**
 * The UCAN side of the API contract, browser-safe: what the `ucan` field of an act
 * carries is a ucanto invocation signed by a human's Ed25519 key, addressed to the
 * mesh, with its proofs, encoded as the base64url of its CAR archive
 * (auth/authority/token.ts decodes and checks it). The node's signer (node:crypto),
 * the CLI's and the console's (WebCrypto, non-extractable) are all built on the
 * principal below and sign through `invocationToken`.
 */

export const ED25519_PUB_CODE = 0xed
export const ED25519_PRIV_CODE = 0x1300
/** ucanto's `Signature.EdDSA` (the varsig code of an Ed25519 signature), written out so that this file loads no ucanto. */
export const EDDSA_SIGNATURE_CODE = 0xd0ed
export const EDDSA = 'EdDSA'

/** Lifetime of an invocation a human signs, by the CLI or the console (seconds). */
export const INVOCATION_TTL_SECONDS = 600

/** What ucanto's Verifier and Signer for one Ed25519 did:key share: its did and signature algorithm. */
export class Ed25519Principal {
  readonly #did: API.DIDKey

  constructor(did: string) {
    this.#did = did as API.DIDKey
  }

  get signatureCode(): number {
    return EDDSA_SIGNATURE_CODE
  }

  get signatureAlgorithm(): string {
    return EDDSA
  }

  did(): API.DIDKey {
    return this.#did
  }

  toDIDKey(): API.DIDKey {
    return this.#did
  }
}

/** One capability to delegate or invoke: an ability on a resource, with its caveats. */
export interface CapabilityInput {
  can: string
  with: string
  nb?: Record<string, unknown>
}

/** Encodes a delegation or invocation with the proofs it embeds, for the wire (base64url CAR). */
export async function encodeToken(delegation: API.Delegation): Promise<string> {
  const archived = await delegation.archive()
  if (archived.error) throw archived.error
  return toBase64url(archived.ok)
}

/**
 * Reads a token (e.g. the mesh's root delegation) as a ucanto delegation, to embed as a
 * proof. It checks nothing: the node verifies the chain it is given.
 */
export async function extractToken(token: string): Promise<API.Delegation> {
  const { Delegation } = await import('@ucanto/core') // issue 15: loaded when first used
  const extracted = await Delegation.extract(fromBase64url(token))
  if (extracted.error) throw new Error(`not a UCAN token: ${extracted.error.message}`)
  return extracted.ok as API.Delegation
}

/**
 * Signs an invocation of `capability` by `issuer`, addressed to `audience` (the
 * signer's mesh), with a fresh nonce and `proofs` embedded; encoded for the `ucan` field.
 */
export async function invocationToken(
  issuer: API.Signer<API.DIDKey>,
  audience: string,
  capability: CapabilityInput,
  proofs: API.Delegation[],
  ttlSeconds = INVOCATION_TTL_SECONDS,
): Promise<string> {
  const { invoke } = await import('@ucanto/core') // issue 15: loaded when first used
  const invocation = invoke({
    issuer,
    audience: { did: () => audience as API.DID },
    capability: capability as unknown as API.Capability,
    expiration: Math.floor(Date.now() / 1000) + ttlSeconds,
    nonce: toBase64url(crypto.getRandomValues(new Uint8Array(16))),
    proofs,
  })
  return encodeToken((await invocation.delegate()) as API.Delegation)
}
