/**
 * Verifiable credentials (W3C VC as JWT, did-jwt-vc) — the "who vouches for you" proof.
 *
 * - Membership credential (`MeshMembershipCredential`), issued by a mesh key about one
 *   of its own principals: `{id, kind: human|agent, role, tier, mesh, meshName}`. Its
 *   issuer must be the mesh it names: a mesh vouches only for its own members.
 * - Vouching credential (`MeshVouchCredential`), issued by anyone about anyone:
 *   `{id, statement}`; informative (it never grants a tier here).
 * - Presentation (VP JWT) of several credentials, signed by its holder and addressed
 *   to the verifying mesh; every credential in it is checked on its own, and the
 *   first bad one is named (index, issuer, reason).
 *
 * Issuing goes through did-jwt-vc with a did-jwt signer backed by node:crypto and a
 * fresh, frozen issuer/options object per call (an options object shared across issuers
 * is how a credential ends up signed by one key and naming another).
 *
 * Verifying is ours on top of did-jwt-vc's payload validators: JWS parsed strictly
 * (EdDSA only, no nested `cty`), issuer resolved through the DidResolver (did:key or
 * did:web), the signature checked with node:crypto against the key the header's `kid`
 * names (or any of the issuer's keys), `exp` required, `nbf`/`iat` honoured, ±skew.
 */
import { createHash } from 'node:crypto'
import type { JwtCredentialPayload, JwtPresentationPayload } from 'did-jwt-vc'
import type { Ed25519KeyPair } from '../../identity/index.ts'
import { verifySignature } from '../../identity/index.ts'
import type { DidResolver } from './did.ts'
import type { AuthorityFailure } from './failure.ts'
import { jwtIssuer } from './principal.ts'
import type { Result } from './result.ts'

export const MEMBERSHIP_CREDENTIAL = 'MeshMembershipCredential'
export const VOUCH_CREDENTIAL = 'MeshVouchCredential'
const VC_CONTEXT = 'https://www.w3.org/2018/credentials/v1'
const MAX_JWT_LENGTH = 16 * 1024
const MAX_PRESENTED = 16

// did-jwt-vc (and did-jwt under it, some 70 modules) loads on the first credential issued
// or verified, not with the node (issue 15: cold start); one loading promise for all.
let didJwtVc: Promise<typeof import('did-jwt-vc')> | undefined
const vcLib = (): Promise<typeof import('did-jwt-vc')> => (didJwtVc ??= import('did-jwt-vc'))

export type PrincipalKind = 'human' | 'agent'

export interface MembershipClaims {
  /** The member's did. */
  id: string
  kind: PrincipalKind
  /** e.g. architect, user, agent */
  role: string
  /** The member's tier on its home mesh (never inherited elsewhere). */
  tier: 1 | 2 | 3 | 4
  /** The home mesh's did (the issuer). */
  mesh: string
  meshName: string
}

export interface VouchClaims {
  id: string
  statement: string
}

export interface VerifiedCredential {
  jwt: string
  /** sha-256 of the JWT, base64url: how a credential is named in verdicts. */
  id: string
  issuer: string
  subject: string
  types: string[]
  exp: number
  nbf: number | undefined
  membership?: MembershipClaims
  vouch?: VouchClaims
}

export interface VerifiedPresentation {
  holder: string
  credentials: VerifiedCredential[]
}

export interface IssueCredentialOptions {
  /** Lifetime; default 365 days for membership, 90 days for vouching. */
  ttlSeconds?: number
  /** ms since the epoch; default `Date.now()`. */
  now?: number
}

/** Issues a membership credential signed by the home mesh's key (`claims.mesh` must be that key's did). */
export async function issueMembershipCredential(
  meshKey: Ed25519KeyPair,
  claims: MembershipClaims,
  options: IssueCredentialOptions = {},
): Promise<string> {
  if (claims.mesh !== meshKey.did)
    throw new TypeError('a membership credential is issued by the mesh it names')
  const iat = Math.floor((options.now ?? Date.now()) / 1000)
  const { id, ...subject } = claims
  const payload: JwtCredentialPayload = {
    sub: id,
    nbf: iat,
    exp: iat + (options.ttlSeconds ?? 365 * 24 * 3600),
    vc: {
      '@context': [VC_CONTEXT],
      type: ['VerifiableCredential', MEMBERSHIP_CREDENTIAL],
      credentialSubject: { ...subject },
    },
  }
  return (await vcLib()).createVerifiableCredentialJwt(payload, jwtIssuer(meshKey), {
    header: { kid: kidOf(meshKey.did) },
  })
}

/** Issues a third-party vouching credential. */
export async function issueVouchCredential(
  issuerKey: Ed25519KeyPair,
  claims: VouchClaims,
  options: IssueCredentialOptions = {},
): Promise<string> {
  const iat = Math.floor((options.now ?? Date.now()) / 1000)
  const payload: JwtCredentialPayload = {
    sub: claims.id,
    nbf: iat,
    exp: iat + (options.ttlSeconds ?? 90 * 24 * 3600),
    vc: {
      '@context': [VC_CONTEXT],
      type: ['VerifiableCredential', VOUCH_CREDENTIAL],
      credentialSubject: { statement: claims.statement },
    },
  }
  return (await vcLib()).createVerifiableCredentialJwt(payload, jwtIssuer(issuerKey), {
    header: { kid: kidOf(issuerKey.did) },
  })
}

/** Issues a presentation of `credentials` by their holder, addressed to `audience` (a mesh did). */
export async function issuePresentation(
  holderKey: Ed25519KeyPair,
  credentials: string[],
  options: { audience: string; ttlSeconds?: number; now?: number; nonce?: string },
): Promise<string> {
  const iat = Math.floor((options.now ?? Date.now()) / 1000)
  const payload: JwtPresentationPayload = {
    aud: options.audience,
    nbf: iat,
    exp: iat + (options.ttlSeconds ?? 600),
    ...(options.nonce === undefined ? {} : { nonce: options.nonce }),
    vp: {
      '@context': [VC_CONTEXT],
      type: ['VerifiablePresentation'],
      verifiableCredential: credentials,
    },
  }
  return (await vcLib()).createVerifiablePresentationJwt(payload, jwtIssuer(holderKey), {
    header: { kid: kidOf(holderKey.did) },
  })
}

function kidOf(did: string): string {
  return did.startsWith('did:key:') ? `${did}#${did.slice('did:key:'.length)}` : `${did}#key-1`
}

export interface CredentialVerifierInit {
  resolver: DidResolver
  /** Allowed clock difference; default 60 s. */
  maxSkewSeconds?: number
  /** Verified credentials kept by JWT hash (time is re-checked on every use); default 1 000. */
  cacheSize?: number
  /** Whether the credential of this id (sha-256 of the JWT) was revoked; default never. */
  isRevoked?: (id: string) => boolean
}

interface Jws {
  header: Record<string, unknown>
  payload: Record<string, unknown>
  signingInput: string
  signature: Uint8Array
}

type CredentialResult = Result<VerifiedCredential, AuthorityFailure>

export class CredentialVerifier {
  readonly #resolver: DidResolver
  readonly #skew: number
  readonly #cacheSize: number
  readonly #cache = new Map<string, VerifiedCredential>()
  readonly #isRevoked: (id: string) => boolean

  constructor(init: CredentialVerifierInit) {
    this.#isRevoked = init.isRevoked ?? (() => false)
    this.#resolver = init.resolver
    this.#skew = init.maxSkewSeconds ?? 60
    this.#cacheSize = init.cacheSize ?? 1_000
  }

  /** Verifies one credential JWT; `now` in ms. */
  async verifyCredential(jwt: unknown, options: { now: number }): Promise<CredentialResult> {
    if (typeof jwt !== 'string' || jwt.length > MAX_JWT_LENGTH)
      return vcFail('the credential is not a JWT string', {})
    const id = createHash('sha256').update(jwt).digest('base64url')
    const now = Math.floor(options.now / 1000)
    if (this.#isRevoked(id)) {
      return vcFail('the credential has been revoked', { credential: id, reason: 'revoked' })
    }
    const cached = this.#cache.get(id)
    if (cached !== undefined) {
      const time = this.#time(cached, now, id)
      return time === undefined ? { ok: cached } : { error: time }
    }
    const jws = parseJws(jwt)
    if (jws === undefined) return vcFail('the credential is not a well-formed EdDSA JWT', { credential: id })
    const payload = jws.payload
    const issuer = payload.iss
    if (typeof issuer !== 'string' || !issuer.startsWith('did:')) {
      return vcFail('the credential has no issuer DID', { credential: id })
    }
    const signed = await this.#checkSignature(jws, issuer, id)
    if (signed !== undefined) return { error: signed }
    if (typeof payload.exp !== 'number') {
      return vcFail('the credential has no expiry (exp)', { credential: id, issuer, reason: 'no-expiry' })
    }
    const { validateJwtCredentialPayload } = await vcLib()
    try {
      validateJwtCredentialPayload(payload as unknown as JwtCredentialPayload)
    } catch (err) {
      return vcFail(`the credential is malformed: ${(err as Error).message}`, { credential: id, issuer })
    }
    const vc = payload.vc as { type: string | string[]; credentialSubject: Record<string, unknown> }
    const subjectId = payload.sub ?? vc.credentialSubject.id
    if (
      typeof subjectId !== 'string' ||
      (vc.credentialSubject.id !== undefined && vc.credentialSubject.id !== subjectId)
    ) {
      return vcFail('the credential names no single subject', { credential: id, issuer })
    }
    const types = Array.isArray(vc.type) ? vc.type : [vc.type]
    const verified: VerifiedCredential = {
      jwt,
      id,
      issuer,
      subject: subjectId,
      types,
      exp: payload.exp,
      nbf: typeof payload.nbf === 'number' ? payload.nbf : undefined,
    }
    if (types.includes(MEMBERSHIP_CREDENTIAL)) {
      const s = vc.credentialSubject
      const tier = s.tier
      if (
        (s.kind !== 'human' && s.kind !== 'agent') ||
        typeof s.role !== 'string' ||
        !(tier === 1 || tier === 2 || tier === 3 || tier === 4) ||
        typeof s.mesh !== 'string' ||
        typeof s.meshName !== 'string'
      ) {
        return vcFail('the membership credential is malformed', { credential: id, issuer })
      }
      if (s.mesh !== issuer) {
        return vcFail('a membership credential must be issued by the mesh it names', {
          credential: id,
          issuer,
          mesh: s.mesh,
          reason: 'issuer',
        })
      }
      verified.membership = {
        id: subjectId,
        kind: s.kind,
        role: s.role,
        tier,
        mesh: s.mesh,
        meshName: s.meshName,
      }
    }
    if (types.includes(VOUCH_CREDENTIAL)) {
      const statement = vc.credentialSubject.statement
      if (typeof statement !== 'string')
        return vcFail('the vouching credential is malformed', { credential: id, issuer })
      verified.vouch = { id: subjectId, statement }
    }
    const time = this.#time(verified, now, id)
    if (time !== undefined) return { error: time }
    if (this.#cache.size >= this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value as string)
    this.#cache.set(id, verified)
    return { ok: verified }
  }

  /**
   * Verifies a presentation and then each credential in it; the first bad credential
   * fails the whole presentation and is named (`details.index`, `details.credential`).
   */
  async verifyPresentation(
    vp: unknown,
    options: { now: number; audience: string; holder?: string },
  ): Promise<Result<VerifiedPresentation, AuthorityFailure>> {
    if (typeof vp !== 'string' || vp.length > MAX_JWT_LENGTH * (MAX_PRESENTED + 1)) {
      return vcFail('the presentation is not a JWT string', { presentation: true })
    }
    const jws = parseJws(vp)
    if (jws === undefined)
      return vcFail('the presentation is not a well-formed EdDSA JWT', { presentation: true })
    const holder = jws.payload.iss
    if (typeof holder !== 'string' || !holder.startsWith('did:')) {
      return vcFail('the presentation has no holder DID', { presentation: true })
    }
    const signed = await this.#checkSignature(jws, holder, 'presentation')
    if (signed !== undefined)
      return { error: { ...signed, details: { ...signed.details, presentation: true } } }
    const now = Math.floor(options.now / 1000)
    const exp = jws.payload.exp
    if (typeof exp !== 'number') return vcFail('the presentation has no expiry (exp)', { presentation: true })
    if (exp < now - this.#skew)
      return vcFail('the presentation has expired', { presentation: true, exp, now })
    const nbf = jws.payload.nbf
    if (typeof nbf === 'number' && nbf > now + this.#skew) {
      return vcFail('the presentation is not valid yet', { presentation: true, nbf, now })
    }
    const aud = jws.payload.aud
    if (!(aud === options.audience || (Array.isArray(aud) && aud.includes(options.audience)))) {
      return vcFail('the presentation is addressed to another mesh', { presentation: true, aud: aud ?? null })
    }
    if (options.holder !== undefined && holder !== options.holder) {
      return vcFail('the presentation is held by someone else than the invoker', {
        presentation: true,
        holder,
        expected: options.holder,
      })
    }
    const { validateJwtPresentationPayload } = await vcLib()
    try {
      validateJwtPresentationPayload(jws.payload as unknown as JwtPresentationPayload)
    } catch (err) {
      return vcFail(`the presentation is malformed: ${(err as Error).message}`, { presentation: true })
    }
    const listed = (jws.payload.vp as { verifiableCredential?: unknown }).verifiableCredential
    const list = listed === undefined ? [] : Array.isArray(listed) ? listed : [listed]
    if (list.length > MAX_PRESENTED)
      return vcFail(`more than ${MAX_PRESENTED} credentials`, { presentation: true })
    const credentials: VerifiedCredential[] = []
    for (const [index, jwt] of list.entries()) {
      const result = await this.verifyCredential(jwt, options)
      if (result.error !== undefined) {
        return {
          error: {
            ...result.error,
            message: `credential ${index} of the presentation: ${result.error.message}`,
            details: { ...result.error.details, index, presentation: true },
          },
        }
      }
      credentials.push(result.ok)
    }
    return { ok: { holder, credentials } }
  }

  #time(credential: VerifiedCredential, now: number, id: string): AuthorityFailure | undefined {
    if (credential.exp < now - this.#skew) {
      return vcFail('the credential has expired', {
        credential: id,
        issuer: credential.issuer,
        exp: credential.exp,
      }).error
    }
    if (credential.nbf !== undefined && credential.nbf > now + this.#skew) {
      return vcFail('the credential is not valid yet', {
        credential: id,
        issuer: credential.issuer,
        nbf: credential.nbf,
      }).error
    }
    return undefined
  }

  async #checkSignature(jws: Jws, issuer: string, id: string): Promise<AuthorityFailure | undefined> {
    const resolved = await this.#resolver.resolve(issuer)
    if (resolved.error !== undefined) {
      return {
        code: 'MESH_VC_INVALID',
        message: `the issuer ${issuer} cannot be resolved: ${resolved.error.message}`,
        proof: 'vc',
        details: { credential: id, issuer, reason: 'did', ...resolved.error.details },
      }
    }
    const kid = jws.header.kid
    let keys = resolved.ok.keys
    if (kid !== undefined) {
      if (typeof kid !== 'string')
        return vcFail('the JWT kid is not a string', { credential: id, issuer }).error
      const full = kid.startsWith('#') ? `${issuer}${kid}` : kid
      keys = keys.filter((k) => k.id === full)
      if (keys.length === 0) {
        return vcFail('the JWT kid names no key of its issuer', {
          credential: id,
          issuer,
          kid,
          reason: 'issuer',
        }).error
      }
    }
    const data = new TextEncoder().encode(jws.signingInput)
    if (!keys.some((key) => verifySignature(key.didKey, data, jws.signature))) {
      return vcFail(`the signature does not verify against the issuer ${issuer} (forged issuer?)`, {
        credential: id,
        issuer,
        reason: 'signature',
      }).error
    }
    return undefined
  }
}

function parseJws(jwt: string): Jws | undefined {
  const parts = jwt.split('.')
  if (parts.length !== 3) return undefined
  const [h, p, s] = parts as [string, string, string]
  if (!/^[A-Za-z0-9_-]+$/.test(h) || !/^[A-Za-z0-9_-]+$/.test(p) || !/^[A-Za-z0-9_-]{86}$/.test(s))
    return undefined
  try {
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>
    if (typeof header !== 'object' || header === null || typeof payload !== 'object' || payload === null)
      return undefined
    if (header.alg !== 'EdDSA' && header.alg !== 'Ed25519') return undefined
    if (header.cty !== undefined || header.crit !== undefined) return undefined
    return {
      header,
      payload,
      signingInput: `${h}.${p}`,
      signature: new Uint8Array(Buffer.from(s, 'base64url')),
    }
  } catch {
    return undefined
  }
}

function vcFail(
  message: string,
  details: Record<string, unknown>,
): { ok?: undefined; error: AuthorityFailure } {
  return { error: { code: 'MESH_VC_INVALID', message, proof: 'vc', details } }
}

/** The `iss` of a JWT, unverified: only to sort held credentials by issuer before verifying them. */
export function jwtIssuerOf(jwt: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      iss?: unknown
    }
    return typeof payload.iss === 'string' ? payload.iss : undefined
  } catch {
    return undefined
  }
}
