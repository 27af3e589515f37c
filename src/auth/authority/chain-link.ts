/**
 * One link of a UCAN chain: decoded from its block, judged on time, and its signature
 * checked against its issuer — node:crypto Ed25519 for a did:key, the keys of a
 * resolved document for a did:web — over the signed bytes rebuilt by `signedBytes`
 * (dag-ucan's own path for unusual payloads). Each link whose signature verified is
 * kept in a bounded LRU by CID: the CID is recomputed from the bytes when a token is
 * decoded, so a hit costs no signature check and cannot be spoofed.
 */

import type * as API from '@ucanto/interface'
import { isDidKey, verifySignature } from '../../identity/index.ts'
import type { DidResolver } from './did.ts'
import { type AuthorityFailure, ucanFailure } from './failure.ts'
import { ucantoVerifier } from './principal.ts'
import { signedBytes } from './signed-bytes.ts'
import { type Block, linkString } from './token.ts'
import { ucantoCore } from './ucanto.ts'

/** One decoded UCAN of a chain. */
export interface ChainLink {
  cid: string
  view: API.Delegation
  issuer: string
  audience: string
  /** Seconds; Infinity when the UCAN has none (refused). */
  expiration: number
  notBefore: number | undefined
  /** CIDs of its proofs. */
  proofs: string[]
}

export interface LinkReaderComponents {
  resolver: DidResolver
}

export interface LinkReaderInit {
  /** Verified links kept by CID; default 10 000. */
  cacheSize?: number
}

const NO_BLOCKS = new Map()

/** Decodes links and checks their signatures, remembering the verified ones. */
export class LinkReader {
  readonly #resolver: DidResolver
  readonly #cacheSize: number
  // Links whose signature verified, by CID (insertion order = recency: an LRU).
  readonly #verified = new Map<string, ChainLink>()
  #hits = 0
  #misses = 0

  constructor(components: LinkReaderComponents, init: LinkReaderInit = {}) {
    this.#resolver = components.resolver
    this.#cacheSize = init.cacheSize ?? 10_000
  }

  /** Cache statistics (for metrics and the benchmark). */
  cacheStats(): { size: number; hits: number; misses: number; max: number } {
    return { size: this.#verified.size, hits: this.#hits, misses: this.#misses, max: this.#cacheSize }
  }

  clearCache(): void {
    this.#verified.clear()
  }

  /** The link in `block` (`key`: its CID when already known). */
  read(block: Block, key: string | undefined): ChainLink | { error: AuthorityFailure } {
    const cid = key ?? linkString(block.cid)
    const known = this.#verified.get(cid)
    if (known !== undefined) return known
    // outside the try: ucanto failing to load is MESH_INTERNAL, not a malformed UCAN
    const { Delegation } = ucantoCore()
    try {
      const view = Delegation.create({ root: block as API.UCANBlock, blocks: NO_BLOCKS })
      const data = view.data
      const model = (data as unknown as { model: { iss: Principal; aud: Principal } }).model
      return {
        cid,
        view,
        issuer: memoizeDid(model.iss),
        audience: memoizeDid(model.aud),
        expiration: data.expiration,
        notBefore: data.notBefore,
        proofs: data.proofs.map(linkString),
      }
    } catch (err) {
      return {
        error: ucanFailure('MESH_UCAN_INVALID', `block ${cid} is not a UCAN: ${(err as Error).message}`, {
          reason: 'malformed',
          cid,
        }),
      }
    }
  }

  /** Whether the link's issuer signed it; `cache` keeps a verified did:key link. */
  async checkSignature(link: ChainLink, cache: boolean): Promise<AuthorityFailure | undefined> {
    const known = this.#verified.get(link.cid)
    if (known !== undefined) {
      this.#hits++
      // refresh its place in the LRU
      this.#verified.delete(link.cid)
      this.#verified.set(link.cid, known)
      return undefined
    }
    this.#misses++
    const issuer = link.issuer
    let valid = false
    if (isDidKeyMemo(issuer)) {
      const signed = signedBytes(modelOf(link), issuer, link.audience)
      valid =
        signed === undefined
          ? (await ucantoCore().UCAN.verifySignature(link.view.data, ucantoVerifier(issuer))) === true
          : verifySignature(issuer, signed, link.view.data.signature.raw)
    } else {
      const resolved = await this.#resolver.resolve(issuer)
      if (resolved.error !== undefined) {
        return {
          code: resolved.error.code,
          message: `issuer of ${link.cid}: ${resolved.error.message}`,
          proof: 'did',
          details: { reason: 'did', cid: link.cid, issuer, ...resolved.error.details },
        }
      }
      const signed = signedBytes(modelOf(link), issuer, link.audience)
      for (const key of resolved.ok.keys) {
        const verifier = ucantoVerifier(key.didKey).withDID(issuer as API.DID)
        const ok =
          signed === undefined
            ? (await ucantoCore().UCAN.verifySignature(link.view.data, verifier)) === true
            : verifySignature(key.didKey, signed, link.view.data.signature.raw)
        if (ok) {
          valid = true
          break
        }
      }
      // did:web keys can rotate: their links are not cached
      cache = false
    }
    if (!valid) {
      return {
        code: 'MESH_SIGNATURE_MISMATCH',
        message: `the signature of ${link.cid} does not verify against its issuer ${issuer}`,
        proof: 'ucan',
        details: { reason: 'signature', cid: link.cid, issuer },
      }
    }
    if (cache) {
      if (this.#verified.size >= this.#cacheSize)
        this.#verified.delete(this.#verified.keys().next().value as string)
      this.#verified.set(link.cid, link)
    }
    return undefined
  }
}

/** Whether the link is within its time (`now` in seconds, ±`skew`), and why not. */
export function timeFailure(link: ChainLink, now: number, skew: number): AuthorityFailure | undefined {
  if (!Number.isFinite(link.expiration)) {
    return ucanFailure('MESH_UCAN_INVALID', `${link.cid} has no expiry`, {
      reason: 'no-expiry',
      cid: link.cid,
    })
  }
  if (link.expiration < now - skew) {
    return ucanFailure('MESH_UCAN_INVALID', `${link.cid} expired`, {
      reason: 'expired',
      cid: link.cid,
      exp: link.expiration,
      now,
    })
  }
  if (link.notBefore !== undefined && link.notBefore > now + skew) {
    return ucanFailure('MESH_CLOCK_SKEW', `${link.cid} is not valid yet`, {
      reason: 'not-yet-valid',
      cid: link.cid,
      nbf: link.notBefore,
      now,
    })
  }
  return undefined
}

type Principal = Uint8Array & { did(): string }

function modelOf(link: ChainLink): Parameters<typeof signedBytes>[0] {
  return (link.view.data as unknown as { model: Parameters<typeof signedBytes>[0] }).model
}

// isDidKey decodes base58 on every call; chains name the same few principals again and again.
const didKeys = new Map<string, boolean>()

/** `isDidKey`, remembered for the few principals chains name again and again. */
export function isDidKeyMemo(did: string): boolean {
  let known = didKeys.get(did)
  if (known === undefined) {
    known = isDidKey(did)
    if (didKeys.size >= DID_STRINGS_MAX) didKeys.clear()
    didKeys.set(did, known)
  }
  return known
}

// dag-ucan formats a principal's did (base58btc, quadratic in JS) on every `did()` call,
// and verifying one link calls it five times; each decoded principal gets its string
// once, from a bounded cache of known principals.
const didStrings = new Map<string, string>()
const DID_STRINGS_MAX = 8192

function memoizeDid(principal: Principal): string {
  const bytes = Buffer.from(principal.buffer, principal.byteOffset, principal.byteLength).toString('latin1')
  let did = didStrings.get(bytes)
  if (did === undefined) {
    did = principal.did()
    if (didStrings.size >= DID_STRINGS_MAX) didStrings.clear()
    didStrings.set(bytes, did)
  }
  const value = did
  Object.defineProperty(principal, 'did', { value: () => value })
  return value
}
