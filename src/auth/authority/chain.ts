/**
 * The UCAN chain verifier: ucanto's capability parsers and `derives` rules decide what
 * a proof grants; this walker decides everything ucanto leaves to its caller, link by
 * link, and explores every alternative path:
 *
 * - audience: the invocation is addressed to the verifying mesh; each proof's audience
 *   is the issuer of the link it supports (principal alignment);
 * - time: every link has an `exp` (required) and an optional `nbf`, judged with ±skew
 *   (default 60 s); an invocation lives at most `maxInvocationLifetimeSeconds`;
 * - revocation: a revoked proof is a dead end, an unrevoked alternative still passes;
 * - depth: at most `maxDepth` delegations between the invocation and the resource's owner;
 * - signatures: node:crypto Ed25519 (did:key, or a did:web's keys) over the signed
 *   bytes rebuilt by `signedBytes` (dag-ucan's own path for unusual payloads); a
 *   did:web issuer's document is fetched only for a path that otherwise reaches the
 *   resource's owner (anyone can name a did:web in a made-up proof); each
 *   verified link kept in a bounded cache by CID — the CID is recomputed from the bytes
 *   when a token is decoded, so a hit costs no signature check and cannot be spoofed;
 *   everything else (time, audience, alignment, revocation, narrowing) is re-checked;
 * - `accept(path)`: the caller's rules (tiers, human in the chain) on each complete
 *   path; a rejected path lets the search go on.
 *
 * The invocation's own signature is the DID proof ("who you are") and is checked by
 * `checkInvoker`, apart from the chain.
 */

import { Delegation, UCAN } from '@ucanto/core'
import type * as API from '@ucanto/interface'
import type { MeshErrorCode } from '../../errors.ts'
import { isDidKey, verifySignature } from '../../identity/index.ts'
import { CAPABILITIES, resourceOwner } from './capabilities.ts'
import type { DidResolver } from './did.ts'
import { ucantoVerifier } from './principal.ts'
import type { Result } from './result.ts'
import { signedBytes } from './signed-bytes.ts'
import { type Block, type DecodedToken, decodeToken, linkString, type TokenResult } from './token.ts'

export type ProofName = 'did' | 'ucan' | 'vc'

/** Why a proof failed: the code the caller reports, and which of the three proofs it was. */
export interface AuthorityFailure {
  code: MeshErrorCode
  message: string
  proof: ProofName
  details: Record<string, unknown>
}

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

/** A complete path: the invocation first, then each proof down to the one the resource's owner issued. */
export interface ChainPath {
  links: ChainLink[]
  /** The capability claimed by the invocation, parsed. */
  capability: { can: string; with: string; nb: Record<string, unknown> }
}

export interface ExpectedCapability {
  can: string
  /** The resource acted on, e.g. the mesh did or `<mesh did>/rooms/<id>`. */
  with: string
  /** Caveats the invocation must carry with exactly these values (e.g. `{peer}`). */
  nb?: Record<string, unknown>
}

export interface ChainVerifierInit {
  resolver: DidResolver
  /** Whether a delegation is revoked (synchronous: a memory mirror); default never. */
  isRevoked?: (cid: string) => boolean
  /** Proofs known locally (e.g. the root delegation), by CID, for tokens that only link them. */
  localProof?: (cid: string) => Block | undefined
  /** Most delegations between invocation and owner; default 8. */
  maxDepth?: number
  /** Allowed clock difference on exp/nbf; default 60 s. */
  maxSkewSeconds?: number
  /** Longest accepted invocation lifetime (exp − now); default 7 days. */
  maxInvocationLifetimeSeconds?: number
  /** Most proof links examined for one invocation (alternatives included); default 64. */
  maxLinkChecks?: number
  /** Verified links kept by CID; default 10 000. */
  cacheSize?: number
}

export interface AuthorizeOptions {
  /** The mesh the invocation must be addressed to. */
  audience: string
  /** The clock, ms since the epoch. */
  now: number
  /** The caller's rules on a complete path; a failure rejects this path only. */
  accept?: (path: ChainPath) => AuthorityFailure | undefined | Promise<AuthorityFailure | undefined>
}

export type ChainResult = Result<ChainPath, AuthorityFailure>

/** What `claim` found: the invocation's one capability, matched and parsed. */
export interface Claim {
  match: API.Match
  value: ChainPath['capability']
}

/** A decoded invocation, ready for `checkInvoker` and `authorize`. */
export interface DecodedInvocation {
  invocation: ChainLink
  blocks: Map<string, Block>
}

// Which chain failure to report when several paths failed differently: the most telling first.
const PRIORITY = [
  'signature',
  'did',
  'revoked',
  'expired',
  'not-yet-valid',
  'no-expiry',
  'alignment',
  'escalation',
  'depth',
  'budget',
  'malformed',
  'unavailable',
  'unrelated',
] as const
type Reason = (typeof PRIORITY)[number]

interface SearchContext {
  blocks: Map<string, Block>
  now: number
  checks: number
  failures: Map<Reason, AuthorityFailure>
  rejections: AuthorityFailure[]
  accept: AuthorizeOptions['accept']
  found: ChainLink[] | undefined
}

const NO_BLOCKS = new Map()

export class ChainVerifier {
  readonly #resolver: DidResolver
  readonly #isRevoked: (cid: string) => boolean
  readonly #localProof: (cid: string) => Block | undefined
  readonly maxDepth: number
  readonly #skew: number
  readonly #maxLifetime: number
  readonly #maxChecks: number
  readonly #cacheSize: number
  // Links whose signature verified, by CID (insertion order = recency: an LRU).
  readonly #verified = new Map<string, ChainLink>()
  #hits = 0
  #misses = 0

  constructor(init: ChainVerifierInit) {
    this.#resolver = init.resolver
    this.#isRevoked = init.isRevoked ?? (() => false)
    this.#localProof = init.localProof ?? (() => undefined)
    this.maxDepth = init.maxDepth ?? 8
    this.#skew = init.maxSkewSeconds ?? 60
    this.#maxLifetime = init.maxInvocationLifetimeSeconds ?? 7 * 24 * 3600
    this.#maxChecks = init.maxLinkChecks ?? 64
    this.#cacheSize = init.cacheSize ?? 10_000
  }

  /** Cache statistics (for metrics and the benchmark). */
  cacheStats(): { size: number; hits: number; misses: number; max: number } {
    return { size: this.#verified.size, hits: this.#hits, misses: this.#misses, max: this.#cacheSize }
  }

  clearCache(): void {
    this.#verified.clear()
  }

  /** Decodes an encoded invocation (hash-checked). */
  decode(token: string | DecodedToken): Result<DecodedInvocation, AuthorityFailure> {
    const decoded: TokenResult = typeof token === 'string' ? decodeToken(token) : { ok: token }
    if (decoded.error !== undefined) {
      return { error: ucanFailure('MESH_UCAN_INVALID', decoded.error.message, { reason: 'malformed' }) }
    }
    const { root, rootKey } = decoded.ok
    const link = this.#link(
      root,
      rootKey !== undefined && decoded.ok.blocks.get(rootKey) === root ? rootKey : undefined,
    )
    if ('error' in link) return link
    return { ok: { invocation: link, blocks: decoded.ok.blocks } }
  }

  /** The DID proof: the invoker's DID resolves and signed the invocation. */
  async checkInvoker(invocation: ChainLink): Promise<AuthorityFailure | undefined> {
    const failure = await this.#checkSignature(invocation, false)
    if (failure === undefined) return undefined
    return { ...failure, proof: 'did' }
  }

  /** Decode, DID proof and chain in one call. */
  async verify(
    token: string | DecodedToken,
    expected: ExpectedCapability,
    options: AuthorizeOptions,
  ): Promise<ChainResult> {
    const decoded = this.decode(token)
    if (decoded.error !== undefined) return decoded
    const invoker = await this.checkInvoker(decoded.ok.invocation)
    if (invoker !== undefined) return { error: invoker }
    return this.authorize(decoded.ok, expected, options)
  }

  /**
   * The checks on the invocation alone that need no signature and no network: it is
   * addressed to `options.audience`, within its time, not too long-lived, and claims
   * exactly `expected`. `authorize` starts with them; the authority runs them first, so
   * that a request failing them costs no DID resolution (a did:web invoker is fetched).
   */
  claim(
    decoded: DecodedInvocation,
    expected: ExpectedCapability,
    options: Pick<AuthorizeOptions, 'audience' | 'now'>,
  ): Result<Claim, AuthorityFailure> {
    const { invocation } = decoded
    const now = Math.floor(options.now / 1000)
    if (invocation.audience !== options.audience) {
      return {
        error: ucanFailure('MESH_UCAN_INVALID', 'the invocation is addressed to another principal', {
          reason: 'audience',
          audience: invocation.audience,
          expected: options.audience,
        }),
      }
    }
    const time = this.#timeFailure(invocation, now)
    if (time !== undefined) return { error: time }
    if (invocation.expiration - now > this.#maxLifetime) {
      return {
        error: ucanFailure('MESH_UCAN_INVALID', 'the invocation lives longer than allowed', {
          reason: 'lifetime',
          exp: invocation.expiration,
          maxLifetimeSeconds: this.#maxLifetime,
        }),
      }
    }
    const info = CAPABILITIES[expected.can]
    if (info === undefined) {
      return {
        error: ucanFailure('MESH_UCAN_INVALID', `unknown ability ${expected.can}`, {
          reason: 'capability',
          can: expected.can,
        }),
      }
    }
    const claimed = invocation.view.capabilities.filter((c) => c.can === expected.can)
    if (claimed.length !== 1 || invocation.view.capabilities.length !== 1) {
      return {
        error: ucanFailure('MESH_UCAN_INVALID', `the invocation must claim exactly one ${expected.can}`, {
          reason: 'capability',
          claimed: invocation.view.capabilities.map((c) => c.can),
        }),
      }
    }
    const match = info.parser.match({ capability: claimed[0] as never, delegation: invocation.view })
    if (match.error) {
      return {
        error: ucanFailure('MESH_UCAN_INVALID', match.error.message, {
          reason: 'malformed',
          can: expected.can,
        }),
      }
    }
    const value = match.ok.value as unknown as ChainPath['capability']
    const wrong = capabilityMismatch(value, expected)
    if (wrong !== undefined) return { error: wrong }
    return { ok: { match: match.ok, value } }
  }

  /**
   * The UCAN proof: the invocation claims `expected` and some valid path derives it
   * from the owner. `claimed` is `claim`'s answer when the caller already has it.
   */
  async authorize(
    decoded: DecodedInvocation,
    expected: ExpectedCapability,
    options: AuthorizeOptions,
    claimed?: Claim,
  ): Promise<ChainResult> {
    const { invocation } = decoded
    const now = Math.floor(options.now / 1000)
    let claim = claimed
    if (claim === undefined) {
      const checked = this.claim(decoded, expected, options)
      if (checked.error !== undefined) return checked
      claim = checked.ok
    }
    const { match, value } = claim

    const context: SearchContext = {
      blocks: decoded.blocks,
      now,
      checks: 0,
      failures: new Map(),
      rejections: [],
      accept: options.accept,
      found: undefined,
    }
    if (await this.#search(match, invocation, [invocation], context)) {
      return { ok: { links: context.found as ChainLink[], capability: value } }
    }
    const rejection = context.rejections[0]
    if (rejection !== undefined) return { error: rejection }
    for (const reason of PRIORITY) {
      const failure = context.failures.get(reason)
      if (failure !== undefined) return { error: failure }
    }
    return {
      error: ucanFailure('MESH_UCAN_INVALID', `no proof grants ${expected.can} on ${expected.with}`, {
        reason: 'unrelated',
      }),
    }
  }

  async #search(
    match: API.Match,
    holder: ChainLink,
    chain: ChainLink[],
    context: SearchContext,
  ): Promise<boolean> {
    const value = match.value as unknown as ChainPath['capability']
    if (resourceOwner(value.with) === holder.issuer) {
      // The links whose issuer is not a did:key were left unsigned-checked on the way
      // down: their DID is fetched only for a path that reaches the owner.
      for (const link of chain.slice(1)) {
        if (isDidKeyMemo(link.issuer)) continue
        const signature = await this.#checkSignature(link, false)
        if (signature !== undefined) {
          record(context, signature)
          return false
        }
      }
      const rejection =
        context.accept === undefined ? undefined : await context.accept({ links: chain, capability: value })
      if (rejection === undefined) {
        context.found = chain
        return true
      }
      context.rejections.push(rejection)
      return false
    }
    if (chain.length - 1 >= this.maxDepth) {
      fail(context, 'depth', `the chain is deeper than ${this.maxDepth} delegations`, {
        maxDepth: this.maxDepth,
      })
      return false
    }
    for (const cid of holder.proofs) {
      if (++context.checks > this.#maxChecks) {
        fail(context, 'budget', `more than ${this.#maxChecks} proofs to examine`, {})
        return false
      }
      if (chain.some((link) => link.cid === cid)) continue
      const block = context.blocks.get(cid) ?? this.#localProof(cid)
      if (block === undefined) {
        fail(context, 'unavailable', `proof ${cid} is neither embedded nor known here`, { cid })
        continue
      }
      const proof = this.#link(block, cid)
      if ('error' in proof) {
        fail(context, 'malformed', proof.error.message, { cid })
        continue
      }
      if (proof.audience !== holder.issuer) {
        fail(
          context,
          'alignment',
          `proof ${cid} is delegated to ${proof.audience}, not to ${holder.issuer}`,
          {
            cid,
            audience: proof.audience,
            holder: holder.issuer,
          },
        )
        continue
      }
      if (this.#isRevoked(cid)) {
        fail(context, 'revoked', `proof ${cid} has been revoked`, { cid })
        continue
      }
      const time = this.#timeFailure(proof, context.now)
      if (time !== undefined) {
        record(context, time)
        continue
      }
      const selection = match.select(
        proof.view.capabilities.map((capability) => ({
          capability,
          delegation: proof.view,
        })) as unknown as API.Source[],
      )
      for (const error of selection.errors) {
        fail(context, 'escalation', error.message, { cid, issuer: proof.issuer })
      }
      if (selection.matches.length === 0) {
        if (selection.errors.length === 0) {
          fail(context, 'unrelated', `proof ${cid} does not delegate ${value.can}`, { cid })
        }
        continue
      }
      // A did:key signature is checked now; a did:web issuer (a fetch of a host anyone
      // can name) only once the rest of the path is known to reach the owner.
      if (isDidKeyMemo(proof.issuer)) {
        const signature = await this.#checkSignature(proof, true)
        if (signature !== undefined) {
          record(context, signature)
          continue
        }
      }
      for (const next of selection.matches) {
        if (await this.#search(next, proof, [...chain, proof], context)) return true
      }
    }
    return false
  }

  #link(block: Block, key: string | undefined): ChainLink | { error: AuthorityFailure } {
    const cid = key ?? linkString(block.cid)
    const known = this.#verified.get(cid)
    if (known !== undefined) return known
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

  #timeFailure(link: ChainLink, now: number): AuthorityFailure | undefined {
    if (!Number.isFinite(link.expiration)) {
      return ucanFailure('MESH_UCAN_INVALID', `${link.cid} has no expiry`, {
        reason: 'no-expiry',
        cid: link.cid,
      })
    }
    if (link.expiration < now - this.#skew) {
      return ucanFailure('MESH_UCAN_INVALID', `${link.cid} expired`, {
        reason: 'expired',
        cid: link.cid,
        exp: link.expiration,
        now,
      })
    }
    if (link.notBefore !== undefined && link.notBefore > now + this.#skew) {
      return ucanFailure('MESH_CLOCK_SKEW', `${link.cid} is not valid yet`, {
        reason: 'not-yet-valid',
        cid: link.cid,
        nbf: link.notBefore,
        now,
      })
    }
    return undefined
  }

  async #checkSignature(link: ChainLink, cache: boolean): Promise<AuthorityFailure | undefined> {
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
          ? (await UCAN.verifySignature(link.view.data, ucantoVerifier(issuer))) === true
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
            ? (await UCAN.verifySignature(link.view.data, verifier)) === true
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

type Principal = Uint8Array & { did(): string }

function modelOf(link: ChainLink): Parameters<typeof signedBytes>[0] {
  return (link.view.data as unknown as { model: Parameters<typeof signedBytes>[0] }).model
}

// isDidKey decodes base58 on every call; chains name the same few principals again and again.
const didKeys = new Map<string, boolean>()

function isDidKeyMemo(did: string): boolean {
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

function capabilityMismatch(
  value: ChainPath['capability'],
  expected: ExpectedCapability,
): AuthorityFailure | undefined {
  if (value.with !== expected.with) {
    return ucanFailure('MESH_UCAN_INVALID', `the invocation acts on ${value.with}, not on ${expected.with}`, {
      reason: 'capability',
      with: value.with,
      expected: expected.with,
    })
  }
  for (const [name, want] of Object.entries(expected.nb ?? {})) {
    const got = value.nb?.[name]
    if (!(got === want || (got != null && want != null && String(got) === String(want)))) {
      return ucanFailure('MESH_UCAN_INVALID', `the invocation's ${name} is not the one expected`, {
        reason: 'capability',
        caveat: name,
        got: got === undefined ? null : String(got),
        expected: String(want),
      })
    }
  }
  return undefined
}

export function ucanFailure(
  code: MeshErrorCode,
  message: string,
  details: Record<string, unknown>,
): AuthorityFailure {
  return { code, message, proof: 'ucan', details }
}

function fail(
  context: SearchContext,
  reason: Reason,
  message: string,
  details: Record<string, unknown>,
): void {
  if (!context.failures.has(reason)) {
    context.failures.set(reason, ucanFailure('MESH_UCAN_INVALID', message, { reason, ...details }))
  }
}

function record(context: SearchContext, failure: AuthorityFailure): void {
  const reason = failure.details.reason as Reason
  if (!context.failures.has(reason)) context.failures.set(reason, failure)
}
