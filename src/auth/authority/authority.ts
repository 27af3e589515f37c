import { createHash } from 'node:crypto'
import type { AuditLog } from '../../audit/index.ts'
import { BadRequestError } from '../../errors.ts'
import type { Ed25519KeyPair } from '../../identity/index.ts'
import type { MeshStore } from '../../store/index.ts'
import { CAPABILITIES, type Tier } from './capabilities.ts'
import { ChainVerifier } from './chain.ts'
import { ChargeBook } from './charges.ts'
import { CredentialRevocations } from './credential-revocations.ts'
import { CredentialVerifier, issueMembershipCredential, type VerifiedCredential } from './credentials.ts'
import { DidResolver } from './did.ts'
import type { AuthorityFailure } from './failure.ts'
import { HeldCredentials } from './held-credentials.ts'
import { InvocationVerifier } from './invocation-verifier.ts'
import { MeshRules } from './mesh-rules.ts'
import { PresentedCredentials } from './presented-credentials.ts'
import { ReplayGuard } from './replay-guard.ts'
import type { Result } from './result.ts'
import { type Revocation, RevocationStore } from './revocations.ts'
import { type RevokeOptions, revokeDelegation } from './revoke.ts'
import { RootDelegation } from './root-delegation.ts'
import { type TrustRecord, TrustStore, type TrustStoreInit } from './trust.ts'
import type { AuthorityContext, AuthorityOk, AuthorityRequest, AuthorityVerdict } from './verdict.ts'

export interface AuthorityInit {
  store: MeshStore
  audit: Pick<AuditLog, 'append'>
  /** The mesh key: root of every resource under this mesh's did. */
  meshKey: Ed25519KeyPair
  meshName: string
  /** The architect (a human): given the root delegation and a tier-1 membership credential at start. */
  architectDid?: string
  /** default a DidResolver over HTTPS with no insecure hosts */
  resolver?: DidResolver
  /** Most delegations in a chain; default 8. */
  maxDepth?: number
  /** Allowed clock difference; default 60 s. */
  maxSkewSeconds?: number
  /** Verified delegations kept by CID; default 10 000. */
  cacheSize?: number
  /** Lifetime of the root delegation (re-issued when less than a tenth is left); default 365 days. */
  rootDelegationTtlSeconds?: number
  /** Which abilities need a human in the chain; default all of them. */
  humanRequired?: (can: string) => boolean
  /** Whether membership credentials from this (foreign) mesh are believed; default all meshes. */
  acceptMembershipIssuer?: (meshDid: string) => boolean
  /** Trust store options (violation threshold and window, auditAccepted, logger). */
  trust?: Pick<TrustStoreInit, 'violationThreshold' | 'violationWindowMs' | 'auditAccepted' | 'logger'>
  /** Refused invocations remembered as charged (one charge each); default 10 000. */
  maxChargedInvocations?: number
  /** default `Date.now` */
  now?: () => number
}

/**
 * The authority of one mesh: who may do what here, from three independent proofs
 * (DID, UCAN chain, credentials) and this mesh's tiers. See index.ts for the contract.
 * A facade: the decision is `InvocationVerifier`'s, the rules `MeshRules`', the
 * charging `ChargeBook`'s; this class owns their lifecycle and the acts built on them.
 */
export class Authority {
  readonly meshDid: string
  readonly resolver: DidResolver
  readonly chains: ChainVerifier
  readonly credentials: CredentialVerifier
  readonly trust: TrustStore
  readonly revocations: RevocationStore
  readonly #audit: Pick<AuditLog, 'append'>
  readonly #store: MeshStore
  readonly #meshKey: Ed25519KeyPair
  readonly #meshName: string
  readonly #architect: string | undefined
  readonly #now: () => number
  readonly #replay: ReplayGuard
  readonly #root: RootDelegation
  readonly #held: HeldCredentials
  readonly #invocations: InvocationVerifier
  /** Membership credentials this mesh revoked (members removed). */
  readonly credentialRevocations: CredentialRevocations
  #started = false

  constructor(init: AuthorityInit) {
    this.#audit = init.audit
    this.#store = init.store
    this.#meshKey = init.meshKey
    this.meshDid = init.meshKey.did
    this.#meshName = init.meshName
    this.#architect = init.architectDid
    const skew = init.maxSkewSeconds ?? 60
    this.#now = init.now ?? Date.now
    this.resolver = init.resolver ?? new DidResolver()
    this.revocations = new RevocationStore({ store: init.store })
    this.#replay = new ReplayGuard({ store: init.store })
    this.#root = new RootDelegation(
      { store: init.store, audit: init.audit, meshKey: init.meshKey },
      {
        now: this.#now,
        ...(init.rootDelegationTtlSeconds === undefined ? {} : { ttlSeconds: init.rootDelegationTtlSeconds }),
      },
    )
    this.#held = new HeldCredentials({ store: init.store })
    this.chains = new ChainVerifier({
      resolver: this.resolver,
      isRevoked: (cid) => this.revocations.isRevoked(cid),
      localProof: (cid) => this.#root.block(cid),
      ...(init.maxDepth === undefined ? {} : { maxDepth: init.maxDepth }),
      maxSkewSeconds: skew,
      ...(init.cacheSize === undefined ? {} : { cacheSize: init.cacheSize }),
    })
    this.credentialRevocations = new CredentialRevocations({ store: init.store })
    this.credentials = new CredentialVerifier({
      resolver: this.resolver,
      maxSkewSeconds: skew,
      isRevoked: (id) => this.credentialRevocations.isRevoked(id),
    })
    this.trust = new TrustStore({
      store: init.store,
      audit: init.audit,
      meshDid: this.meshDid,
      now: this.#now,
      ...init.trust,
    })
    this.#invocations = new InvocationVerifier(
      {
        store: init.store,
        chains: this.chains,
        replay: this.#replay,
        presented: new PresentedCredentials({ credentials: this.credentials }, { meshDid: this.meshDid }),
        rules: new MeshRules(
          { trust: this.trust, credentials: this.credentials, held: this.#held },
          {
            meshDid: this.meshDid,
            ...(init.humanRequired === undefined ? {} : { humanRequired: init.humanRequired }),
            ...(init.acceptMembershipIssuer === undefined
              ? {}
              : { acceptMembershipIssuer: init.acceptMembershipIssuer }),
          },
        ),
        charges: new ChargeBook({
          meshDid: this.meshDid,
          maxSkewSeconds: skew,
          ...(init.maxChargedInvocations === undefined ? {} : { maxCharged: init.maxChargedInvocations }),
        }),
        tierOf: (did) => this.trust.tierOf(did),
      },
      { meshDid: this.meshDid, maxSkewSeconds: skew },
    )
  }

  /**
   * Loads revocations, spent invocations, trust and held credentials; then, with an
   * architect, makes sure it holds a live root delegation and a membership credential.
   */
  async start(): Promise<void> {
    if (this.#started) return
    await Promise.all([
      this.#replay.open(),
      this.revocations.open(),
      this.trust.open(),
      this.credentialRevocations.open(),
    ])
    await this.#held.open()
    await this.#root.open()
    this.#started = true
    if (this.#architect !== undefined) {
      await this.ensureRootDelegation(this.#architect)
      if (!this.#held.holdsFrom(this.#architect, this.meshDid)) {
        await this.enrollMember(this.#architect, { kind: 'human', role: 'architect', tier: 1 })
      } else if (this.trust.tierOf(this.#architect) !== 1) {
        await this.trust.enrollLocal(this.#architect, { kind: 'human', role: 'architect', tier: 1 })
      }
    }
  }

  async stop(): Promise<void> {
    this.#started = false
  }

  /**
   * The long-lived root delegation `{can: '*', with: <mesh did>}` from the mesh key to
   * its architect; re-issued when missing, for another architect, or near its end.
   * Returns its encoded token and CID (the architect's chains embed or link it).
   */
  ensureRootDelegation(architect: string): Promise<{ token: string; cid: string; exp: number }> {
    return this.#root.ensure(architect)
  }

  /** The current root delegation, if any. */
  rootDelegation(): { token: string; cid: string; exp: number; architect: string } | undefined {
    return this.#root.current()
  }

  /**
   * Enrolls a member of this mesh: issues its membership credential (signed by the mesh
   * key), keeps it, and gives the member that tier here. Returns the credential JWT.
   */
  async enrollMember(
    did: string,
    member: { kind: 'human' | 'agent'; role: string; tier: Tier },
    options: { actor?: string; ttlSeconds?: number } = {},
  ): Promise<string> {
    const jwt = await issueMembershipCredential(
      this.#meshKey,
      {
        id: did,
        kind: member.kind,
        role: member.role,
        tier: member.tier,
        mesh: this.meshDid,
        meshName: this.#meshName,
      },
      { now: this.#now(), ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }) },
    )
    await this.#held.put(did, jwt)
    await this.trust.enrollLocal(did, member, options.actor === undefined ? {} : { actor: options.actor })
    return jwt
  }

  /**
   * Removes a member of this mesh (SPEC §8): every membership credential held for it is
   * revoked (refused by the credential verifier from now on) and forgotten, and the trust
   * store marks it removed, so that every chain through it is refused.
   */
  async removeMember(did: string, options: { actor: string }): Promise<void> {
    const at = new Date(this.#now()).toISOString()
    const held = this.#held.of(did)
    const revoked = held.map((jwt) => ({
      id: createHash('sha256').update(jwt).digest('base64url'),
      subject: did,
      by: options.actor,
      at,
      reason: 'member removed',
    }))
    await this.#store.batch(this.credentialRevocations.operations(revoked))
    this.credentialRevocations.applied(revoked)
    await this.#held.drop(did)
    await this.trust.removeLocal(did, options)
  }

  /**
   * Keeps a credential received out of band (e.g. a peer architect's membership at the
   * connection handshake) so later chains through its subject need not present it.
   * Verified now, and again at every use.
   */
  async addCredential(jwt: string): Promise<Result<VerifiedCredential, AuthorityFailure>> {
    const result = await this.credentials.verifyCredential(jwt, { now: this.#now() })
    if (result.error !== undefined) return result
    await this.#held.put(result.ok.subject, jwt)
    return result
  }

  /** The credential JWTs held for `did`. */
  heldCredentials(did: string): string[] {
    return this.#held.of(did)
  }

  /**
   * Verifies that `request.ucan` is an invocation of `request.can` on `request.with`
   * (with `request.nb`) addressed to this mesh, by three independent proofs:
   *
   * - did: the invoker's DID resolves and signed the invocation;
   * - vc: every credential presented is valid (the first bad one is named);
   * - ucan: a valid chain from the resource's owner, with this mesh's rules — time ±skew,
   *   depth, revocation, narrowing, tiers, a human in the chain — and no replay.
   *
   * Never throws for a bad request: `{error}` names the failed proof and its code.
   */
  async verifyAuthority(
    request: AuthorityRequest,
    context: AuthorityContext = {},
  ): Promise<AuthorityVerdict> {
    if (!this.#started) throw new Error('Authority.start() was not called')
    return this.#invocations.verify(request, {
      ...context,
      now: context.now ?? this.#now(),
      audience: context.audience ?? this.meshDid,
    })
  }

  /**
   * An act by its encoded token, the audience, the act and the subject. `capability` is an ability of CAPABILITIES;
   * `subject` fills its subject caveat (mesh/connect: peer, connection/*: connection…);
   * `resource` defaults to the audience (the mesh acted upon).
   */
  verifyAct(
    token: string,
    options: {
      audience: string
      capability: string
      subject: string
      resource?: string
      credentials?: string[]
      presentation?: string
      now?: number
      deferCommit?: boolean
      /** A forwarded act of the audience mesh on itself (see AuthorityContext.foreign). */
      foreign?: boolean
    },
  ): Promise<AuthorityVerdict> {
    const info = CAPABILITIES[options.capability]
    if (info?.subject === undefined) {
      throw new BadRequestError(`${options.capability} is not an act with a subject`, {
        capability: options.capability,
      })
    }
    return this.verifyAuthority(
      {
        ucan: token,
        can: options.capability,
        with: options.resource ?? options.audience,
        nb: { [info.subject]: options.subject },
        ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
        ...(options.presentation === undefined ? {} : { presentation: options.presentation }),
      },
      {
        audience: options.audience,
        ...(options.now === undefined ? {} : { now: options.now }),
        ...(options.deferCommit === undefined ? {} : { deferCommit: options.deferCommit }),
        ...(options.foreign === undefined ? {} : { foreign: options.foreign }),
      },
    )
  }

  /** After writing `ok.commitOperations` yourself (deferCommit): nothing to do; kept for symmetry. */
  committed(_ok: AuthorityOk): void {}

  /** Takes back a deferred verdict whose act was not carried out. */
  release(ok: AuthorityOk): void {
    this.#replay.release(ok.invocation)
  }

  /**
   * Revokes a delegation: `token` is a `ucan/revoke` invocation on this mesh with
   * `nb.ucan` the delegation's CID (and optionally `nb.reason`). Recorded with an
   * audit row in one batch. Throws a MeshError (details.proof names the failed proof).
   */
  revoke(token: string, options: RevokeOptions = {}): Promise<Revocation> {
    return revokeDelegation(
      {
        audit: this.#audit,
        revocations: this.revocations,
        verify: (request, context) => this.verifyAuthority(request, context),
        release: (ok) => this.release(ok),
        meshDid: this.meshDid,
        now: this.#now,
      },
      token,
      options,
    )
  }

  /**
   * Sets the tier of `subject` on a local human's signed `trust/promote` invocation
   * (`nb: {subject, tier, reason}`). Throws a MeshError when refused.
   */
  promote(
    token: string,
    subject: string,
    options: {
      credentials?: string[]
      presentation?: string
      now?: number
      scope?: 'principal' | 'mesh'
    } = {},
  ): Promise<TrustRecord> {
    return this.trust.promote(
      token,
      subject,
      async (ucan, who, opts) => {
        const verdict = await this.verifyAuthority(
          {
            ucan,
            can: 'trust/promote',
            with: this.meshDid,
            nb: { subject: who },
            ...(opts.credentials === undefined ? {} : { credentials: opts.credentials }),
            ...(opts.presentation === undefined ? {} : { presentation: opts.presentation }),
          },
          opts.now === undefined ? {} : { now: opts.now },
        )
        return verdict.error !== undefined ? { error: verdict.error } : { ok: verdict.ok }
      },
      options,
    )
  }

  /** Forgets spent invocations that can no longer pass the time check; returns how many. */
  prune(): Promise<number> {
    return this.#replay.prune(this.#now())
  }
}
