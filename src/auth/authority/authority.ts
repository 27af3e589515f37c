import { createHash } from 'node:crypto'
import type { AuditLog } from '../../audit/index.ts'
import { BadRequestError, MeshError } from '../../errors.ts'
import { type Ed25519KeyPair, isDidKey } from '../../identity/index.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../../store/index.ts'
import { CAPABILITIES, MAX_DELEGATING_TIER, resourceOwner, type Tier } from './capabilities.ts'
import {
  type AuthorityFailure,
  type ChainLink,
  type ChainPath,
  ChainVerifier,
  type ExpectedCapability,
  type ProofName,
  ucanFailure,
} from './chain.ts'
import {
  CredentialVerifier,
  issueMembershipCredential,
  jwtIssuerOf,
  type VerifiedCredential,
} from './credentials.ts'
import { DidResolver } from './did.ts'
import { ReplayGuard } from './replay-guard.ts'
import type { Result } from './result.ts'
import { type Revocation, RevocationStore } from './revocations.ts'
import { type Block, decodeToken, encodeToken, issueDelegation } from './token.ts'
import { type TrustRecord, TrustStore, type TrustStoreInit } from './trust.ts'

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

/** What is asked: an encoded invocation, the capability it must claim, and the credentials presented with it. */
export interface AuthorityRequest extends ExpectedCapability {
  /** The encoded invocation (base64url CAR, see `encodeToken`). */
  ucan: string
  /** Credential JWTs presented alongside (membership of the humans in the chain, vouching). */
  credentials?: string[]
  /** Or a presentation (VP JWT) of them, held by the invoker and addressed to this mesh. */
  presentation?: string
}

export interface AuthorityContext {
  /** ms since the epoch; default the authority's clock. */
  now?: number
  /** The principal the invocation must be addressed to; default this mesh. */
  audience?: string
  /**
   * Leave the invocation claimed but unwritten: the caller writes `ok.commitOperations`
   * in the batch of the act's effect (then `committed`), or `release`s it. Default false:
   * the invocation is spent before the verdict returns.
   */
  deferCommit?: boolean
  /**
   * A forwarded act of another mesh on its own resources (a peer's connect, accept,
   * decline or disconnect): `audience` is that mesh, which must also own `request.with`,
   * so the chain is rooted in its key. This mesh's tiers do not apply (they rule what
   * principals may do *here*); the human in the chain is shown by a membership
   * credential that mesh issued (presented, or held here) to a key other than its own.
   * Default false.
   */
  foreign?: boolean
}

export interface AuthorityOk {
  /** The invoker. */
  issuer: string
  audience: string
  capability: ChainPath['capability']
  /** CIDs: the invocation, then each proof down to the one the resource's owner issued. */
  chain: string[]
  /** The issuers along the chain, in the same order. */
  issuers: string[]
  /** The invoker's tier on this mesh. */
  tier: Tier
  /** The human whose credential satisfied the human-in-the-chain rule (undefined when not required). */
  humanInChain: string | undefined
  /** CID of the invocation (spent). */
  invocation: string
  credentials: VerifiedCredential[]
  /** With `deferCommit`: the operations that spend the invocation. */
  commitOperations: StoreOperation[]
}

export interface AuthorityError extends AuthorityFailure {
  /** Every proof that failed, in the order did, vc, ucan. */
  failed?: { proof: ProofName; code: string; message: string }[]
  /**
   * Who this refusal may be charged to (reputation): the invoker, set only when this
   * request proves that it invoked — its own signature holds on an invocation addressed
   * here, within its time, seen refused for the first time — and what failed is the
   * chain it signed, not a replay nor the credentials presented beside it (anyone can
   * attach or strip those). Never a proof's issuer: a delegation is held by its delegates
   * and everyone they showed it to, and posting it proves nothing about who sent it.
   */
  accountable?: string
}

export type AuthorityVerdict =
  | { ok: AuthorityOk; error?: undefined }
  | { ok?: undefined; error: AuthorityError }

interface RootRecord {
  token: string
  cid: string
  architect: string
  exp: number
  /** The mesh key that issued it (a key rotation re-issues it); absent in older records. */
  mesh?: string
}

const PROOF_ORDER: ProofName[] = ['did', 'vc', 'ucan']
// Refusals that say nothing about what the invoker signed.
const NOT_CHARGED = new Set(['MESH_REPLAY', 'MESH_BAD_REQUEST', 'MESH_UNAVAILABLE', 'MESH_INTERNAL'])

/**
 * The authority of one mesh: who may do what here, from three independent proofs
 * (DID, UCAN chain, credentials) and this mesh's tiers. See index.ts for the contract.
 */
export class Authority {
  readonly meshDid: string
  readonly resolver: DidResolver
  readonly chains: ChainVerifier
  readonly credentials: CredentialVerifier
  readonly trust: TrustStore
  readonly revocations: RevocationStore
  readonly #store: MeshStore
  readonly #audit: Pick<AuditLog, 'append'>
  readonly #meshKey: Ed25519KeyPair
  readonly #meshName: string
  readonly #architect: string | undefined
  readonly #skew: number
  readonly #rootTtl: number
  readonly #humanRequired: (can: string) => boolean
  readonly #acceptIssuer: (meshDid: string) => boolean
  readonly #now: () => number
  readonly #replay: ReplayGuard
  readonly #delegations: Sublevel<RootRecord | string>
  readonly #credentialsSub: Sublevel<string>
  readonly #localBlocks = new Map<string, Block>()
  readonly #held = new Map<string, Set<string>>()
  // Refused invocations already charged to their invoker, by CID → when they expire (ms):
  // a reposted copy is charged nothing more.
  readonly #charged = new Map<string, number>()
  readonly #maxCharged: number
  #root: RootRecord | undefined
  #started = false

  constructor(init: AuthorityInit) {
    this.#store = init.store
    this.#audit = init.audit
    this.#meshKey = init.meshKey
    this.meshDid = init.meshKey.did
    this.#meshName = init.meshName
    this.#architect = init.architectDid
    this.#skew = init.maxSkewSeconds ?? 60
    this.#rootTtl = init.rootDelegationTtlSeconds ?? 365 * 24 * 3600
    this.#humanRequired = init.humanRequired ?? (() => true)
    this.#acceptIssuer = init.acceptMembershipIssuer ?? (() => true)
    this.#now = init.now ?? Date.now
    this.#maxCharged = init.maxChargedInvocations ?? 10_000
    this.resolver = init.resolver ?? new DidResolver()
    this.revocations = new RevocationStore({ store: init.store })
    this.#replay = new ReplayGuard({ store: init.store })
    this.chains = new ChainVerifier({
      resolver: this.resolver,
      isRevoked: (cid) => this.revocations.isRevoked(cid),
      localProof: (cid) => this.#localBlocks.get(cid),
      ...(init.maxDepth === undefined ? {} : { maxDepth: init.maxDepth }),
      maxSkewSeconds: this.#skew,
      ...(init.cacheSize === undefined ? {} : { cacheSize: init.cacheSize }),
    })
    this.credentials = new CredentialVerifier({ resolver: this.resolver, maxSkewSeconds: this.#skew })
    this.trust = new TrustStore({
      store: init.store,
      audit: init.audit,
      meshDid: this.meshDid,
      now: this.#now,
      ...init.trust,
    })
    this.#delegations = init.store.sublevel<RootRecord | string>('delegations')
    this.#credentialsSub = init.store.sublevel<string>('credentials')
  }

  /**
   * Loads revocations, spent invocations, trust and held credentials; then, with an
   * architect, makes sure it holds a live root delegation and a membership credential.
   */
  async start(): Promise<void> {
    if (this.#started) return
    await Promise.all([this.#replay.open(), this.revocations.open(), this.trust.open()])
    for await (const [key, jwt] of this.#credentialsSub.iterator({ gte: '1/', lt: '1/~' })) {
      const subject = key.slice(2, key.lastIndexOf('/'))
      this.#hold(subject, jwt)
    }
    const root = await this.#delegations.get('1/root')
    if (root !== undefined && typeof root === 'object') this.#applyRoot(root)
    this.#started = true
    if (this.#architect !== undefined) {
      await this.ensureRootDelegation(this.#architect)
      if (!this.#holdsMembership(this.#architect, this.meshDid)) {
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
  async ensureRootDelegation(architect: string): Promise<{ token: string; cid: string; exp: number }> {
    const now = Math.floor(this.#now() / 1000)
    const root = this.#root
    if (
      root !== undefined &&
      root.architect === architect &&
      root.mesh === this.meshDid &&
      root.exp - now > this.#rootTtl / 10
    ) {
      return { token: root.token, cid: root.cid, exp: root.exp }
    }
    const exp = now + this.#rootTtl
    const delegation = await issueDelegation({
      issuer: this.#meshKey,
      audience: architect,
      capabilities: [{ can: '*', with: this.meshDid }],
      expiration: exp,
    })
    const record: RootRecord = {
      token: await encodeToken(delegation),
      cid: delegation.cid.toString(),
      architect,
      exp,
      mesh: this.meshDid,
    }
    await this.#audit.append(
      {
        action: 'authority.root-delegated',
        actor: this.meshDid,
        subject: architect,
        details: { cid: record.cid, exp, previous: root?.cid ?? null },
      },
      {
        with: [{ type: 'put', sublevel: this.#delegations, key: '1/root', value: record } as StoreOperation],
      },
    )
    this.#applyRoot(record)
    return { token: record.token, cid: record.cid, exp }
  }

  /** The current root delegation, if any. */
  rootDelegation(): { token: string; cid: string; exp: number; architect: string } | undefined {
    return this.#root === undefined ? undefined : { ...this.#root }
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
    await this.#storeCredential(did, jwt)
    await this.trust.enrollLocal(did, member, options.actor === undefined ? {} : { actor: options.actor })
    return jwt
  }

  /**
   * Keeps a credential received out of band (e.g. a peer architect's membership at the
   * connection handshake) so later chains through its subject need not present it.
   * Verified now, and again at every use.
   */
  async addCredential(jwt: string): Promise<Result<VerifiedCredential, AuthorityFailure>> {
    const result = await this.credentials.verifyCredential(jwt, { now: this.#now() })
    if (result.error !== undefined) return result
    await this.#storeCredential(result.ok.subject, jwt)
    return result
  }

  /** The credential JWTs held for `did`. */
  heldCredentials(did: string): string[] {
    return [...(this.#held.get(did) ?? [])]
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
    const now = context.now ?? this.#now()
    const audience = context.audience ?? this.meshDid
    if (typeof request !== 'object' || request === null || typeof request.can !== 'string') {
      return { error: ucanFailure('MESH_BAD_REQUEST', 'an authority request names a capability', {}) }
    }
    const foreign = context.foreign === true
    if (foreign && (resourceOwner(String(request.with)) !== audience || audience === this.meshDid)) {
      return {
        error: ucanFailure(
          'MESH_BAD_REQUEST',
          'a foreign act is on a resource of the mesh it is addressed to',
          {
            reason: 'foreign',
            with: request.with,
            audience,
          },
        ),
      }
    }
    const decoded = this.chains.decode(request.ucan)
    if (decoded.error !== undefined) return { error: decoded.error }
    const invocation = decoded.ok.invocation
    if (this.#replay.claim(invocation.cid, 0)) {
      this.#replay.release(invocation.cid)
    } else {
      return {
        error: ucanFailure('MESH_REPLAY', 'this invocation was already used', {
          reason: 'replay',
          cid: invocation.cid,
        }),
      }
    }

    // What needs neither a signature nor the network comes first: audience, time, the
    // capability claimed. A request failing it resolves no did:web and checks no credential.
    const claim = this.chains.claim(decoded.ok, request, { audience, now })
    if (claim.error !== undefined) {
      return {
        error: {
          ...claim.error,
          failed: [{ proof: claim.error.proof, code: claim.error.code, message: claim.error.message }],
        },
      }
    }

    const failures: AuthorityFailure[] = []
    // A did:web invoker is resolved (fetched) only once its chain holds; a did:key is local.
    const webInvoker = !isDidKey(invocation.issuer)
    // 1. DID: who you are.
    const did = webInvoker ? undefined : await this.chains.checkInvoker(invocation)
    if (did !== undefined) failures.push(did)
    // 2. VC: who vouches for you (what needs a did:web fetched waits in `later`).
    const presented: VerifiedCredential[] = []
    const later: LaterCredentials = { credentials: [] }
    const vc = await this.#checkCredentials(request, invocation.issuer, now, presented, later)
    if (vc !== undefined) failures.push(vc)
    // 3. UCAN: what you may do, under this mesh's rules.
    let human: string | undefined
    const authorize = () =>
      this.chains.authorize(
        decoded.ok,
        request,
        {
          audience,
          now,
          accept: async (path) => {
            const verdict = foreign
              ? await this.#foreignRules(path, presented, now)
              : await this.#rules(path, presented, now)
            if (verdict.error !== undefined) return verdict.error
            human = verdict.human
            return undefined
          },
        },
        claim.ok,
      )
    let chain = await authorize()
    // The credentials left for later are checked once the chain holds, or lacks only the
    // human they may show: a chain this mesh granted, not any request naming a host.
    if (
      vc === undefined &&
      (later.presentation !== undefined || later.credentials.length > 0) &&
      (chain.error === undefined || chain.error.code === 'MESH_NOT_HUMAN_SIGNED')
    ) {
      const late = await this.#checkCredentials(
        { ...later, credentials: later.credentials.map(([, jwt]) => jwt) },
        invocation.issuer,
        now,
        presented,
        undefined,
        later.credentials.map(([index]) => index),
      )
      if (late !== undefined) failures.push(late)
      else if (chain.error !== undefined) chain = await authorize()
    }
    if (chain.error !== undefined) failures.push(chain.error)
    if (webInvoker && failures.length === 0) {
      const web = await this.chains.checkInvoker(invocation)
      if (web !== undefined) failures.push(web)
    }

    if (failures.length > 0) {
      failures.sort((a, b) => PROOF_ORDER.indexOf(a.proof) - PROOF_ORDER.indexOf(b.proof))
      const first = failures[0] as AuthorityFailure
      const accountable = this.#accountable(invocation, failures, webInvoker, now)
      return {
        error: {
          ...first,
          failed: failures.map((f) => ({ proof: f.proof, code: f.code, message: f.message })),
          ...(accountable === undefined ? {} : { accountable }),
        },
      }
    }
    const path = (chain as { ok: ChainPath }).ok

    const forgetAt = this.#forgetAt(invocation.expiration)
    if (!this.#replay.claim(invocation.cid, forgetAt)) {
      return {
        error: ucanFailure('MESH_REPLAY', 'this invocation was already used', {
          reason: 'replay',
          cid: invocation.cid,
        }),
      }
    }
    const commitOperations = this.#replay.operations(invocation.cid, forgetAt)
    if (context.deferCommit !== true) {
      try {
        await this.#store.batch(commitOperations)
      } catch (err) {
        this.#replay.release(invocation.cid)
        throw err
      }
    }
    return {
      ok: {
        issuer: invocation.issuer,
        audience: invocation.audience,
        capability: path.capability,
        chain: path.links.map((l) => l.cid),
        issuers: path.links.map((l) => l.issuer),
        tier: this.trust.tierOf(invocation.issuer),
        humanInChain: human,
        invocation: invocation.cid,
        credentials: presented,
        commitOperations: context.deferCommit === true ? commitOperations : [],
      },
    }
  }

  /**
   * The drop-in for the interim human act's verifier: same inputs (the encoded token,
   * the audience, the act, the subject). `capability` is an ability of CAPABILITIES;
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
  async revoke(
    token: string,
    options: { credentials?: string[]; presentation?: string; now?: number } = {},
  ): Promise<Revocation> {
    const verdict = await this.verifyAuthority(
      {
        ucan: token,
        can: 'ucan/revoke',
        with: this.meshDid,
        ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
        ...(options.presentation === undefined ? {} : { presentation: options.presentation }),
      },
      { deferCommit: true, ...(options.now === undefined ? {} : { now: options.now }) },
    )
    if (verdict.error !== undefined) throw toMeshError(verdict.error)
    const target = verdict.ok.capability.nb.ucan
    if (target == null) {
      this.release(verdict.ok)
      throw new BadRequestError('a ucan/revoke invocation names the delegation (nb.ucan)')
    }
    const revocation: Revocation = {
      cid: String(target),
      by: verdict.ok.issuer,
      reason: typeof verdict.ok.capability.nb.reason === 'string' ? verdict.ok.capability.nb.reason : '',
      at: new Date(options.now ?? this.#now()).toISOString(),
      invocation: verdict.ok.invocation,
    }
    try {
      await this.#audit.append(
        {
          action: 'ucan.revoked',
          actor: revocation.by,
          subject: revocation.cid,
          details: { reason: revocation.reason, invocation: revocation.invocation },
        },
        { with: [...this.revocations.operations(revocation), ...verdict.ok.commitOperations] },
      )
    } catch (err) {
      this.release(verdict.ok)
      throw err
    }
    this.revocations.applied(revocation)
    return revocation
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

  /**
   * The invoker, when this refusal may be charged to it (see AuthorityError.accountable).
   * Called after `claim` passed (addressed here, within its time); each invocation is
   * charged once, remembered until it expires.
   */
  #accountable(
    invocation: ChainLink,
    failures: AuthorityFailure[],
    webInvoker: boolean,
    now: number,
  ): string | undefined {
    if (invocation.issuer === this.meshDid) return undefined
    // A did:web invoker's signature is checked only when its chain held: unproven here.
    if (webInvoker) return undefined
    if (failures.some((f) => f.proof !== 'ucan')) return undefined
    if (failures.some((f) => NOT_CHARGED.has(f.code))) return undefined
    if (this.#charged.has(invocation.cid)) return undefined
    if (this.#charged.size >= this.#maxCharged) {
      for (const [cid, until] of this.#charged) if (until <= now) this.#charged.delete(cid)
      // Still full: the oldest tenth goes (a reposted old one may then be charged once more).
      let drop = this.#charged.size >= this.#maxCharged ? Math.ceil(this.#maxCharged / 10) : 0
      for (const cid of this.#charged.keys()) {
        if (drop-- <= 0) break
        this.#charged.delete(cid)
      }
    }
    this.#charged.set(invocation.cid, invocation.expiration * 1000 + this.#skew * 1000)
    return invocation.issuer
  }

  /**
   * Checks the presentation and the credentials presented; the first bad one is the
   * failure. With `later`, one whose check needs a did:web document (its issuer, the
   * presentation's holder or a credential inside it) is not checked but kept there, for
   * the caller to check only if the request gets far enough to need it. `indexes` are
   * the credentials' places in the request (default their places in `request.credentials`).
   */
  async #checkCredentials(
    request: Pick<AuthorityRequest, 'presentation' | 'credentials'>,
    invoker: string,
    now: number,
    presented: VerifiedCredential[],
    later?: LaterCredentials,
    indexes?: number[],
  ): Promise<AuthorityFailure | undefined> {
    if (request.presentation !== undefined) {
      if (later !== undefined && needsDidWeb(request.presentation)) {
        later.presentation = request.presentation
      } else {
        const vp = await this.credentials.verifyPresentation(request.presentation, {
          now,
          audience: this.meshDid,
          holder: invoker,
        })
        if (vp.error !== undefined) return vp.error
        presented.push(...vp.ok.credentials)
      }
    }
    const list = request.credentials ?? []
    if (!Array.isArray(list) || list.length > 16) {
      return {
        code: 'MESH_VC_INVALID',
        message: 'credentials is a list of at most 16 JWTs',
        proof: 'vc',
        details: {},
      }
    }
    for (const [i, jwt] of list.entries()) {
      const index = indexes?.[i] ?? i
      if (later !== undefined && needsDidWeb(jwt)) {
        later.credentials.push([index, jwt])
        continue
      }
      const result = await this.credentials.verifyCredential(jwt, { now })
      if (result.error !== undefined) {
        return {
          ...result.error,
          message: `credential ${index}: ${result.error.message}`,
          details: { ...result.error.details, index },
        }
      }
      presented.push(result.ok)
    }
    return undefined
  }

  // This mesh's rules on one complete path: tiers and the human in the chain.
  async #rules(
    path: ChainPath,
    presented: VerifiedCredential[],
    now: number,
  ): Promise<
    { error: AuthorityFailure; human?: undefined } | { error?: undefined; human: string | undefined }
  > {
    const { links, capability } = path
    const can = capability.can
    const invoker = (links[0] as ChainPath['links'][number]).issuer
    const owner = resourceOwner(capability.with)
    for (let i = 1; i < links.length; i++) {
      const link = links[i] as ChainPath['links'][number]
      if (link.issuer === owner) continue
      const tier = this.trust.tierOf(link.issuer)
      if (tier > MAX_DELEGATING_TIER) {
        return {
          error: tierFailure(`a tier ${tier} principal cannot re-delegate`, {
            reason: 'redelegation',
            principal: link.issuer,
            tier,
            cid: link.cid,
          }),
        }
      }
    }
    const tier = this.trust.tierOf(invoker)
    if (tier === 4 && CAPABILITIES[can]?.participation !== true) {
      return {
        error: tierFailure(`tier 4 is participation only; ${can} is not`, {
          reason: 'participation',
          principal: invoker,
          tier,
          can,
        }),
      }
    }
    if (can === 'trust/promote') {
      if (!this.trust.isLocal(invoker) || invoker === this.meshDid) {
        return {
          error: tierFailure('only a member of this mesh may change tiers here', {
            reason: 'foreign',
            principal: invoker,
            tier,
          }),
        }
      }
      if (!(await this.#isHuman(invoker, presented, now, true))) {
        return {
          error: ucanFailure('MESH_NOT_HUMAN_SIGNED', 'a tier is changed only by a local human', {
            reason: 'promoter',
            principal: invoker,
          }),
        }
      }
      const granted = capability.nb.tier
      if (typeof granted === 'number' && granted < tier) {
        return {
          error: tierFailure(`a tier ${tier} principal cannot grant tier ${granted}`, {
            reason: 'grant',
            principal: invoker,
            tier,
            granted,
          }),
        }
      }
    }
    if (!this.#humanRequired(can)) return { human: undefined }
    for (const link of links) {
      if (await this.#isHuman(link.issuer, presented, now, false)) return { human: link.issuer }
    }
    return {
      error: ucanFailure('MESH_NOT_HUMAN_SIGNED', 'no human signed in this chain', {
        reason: 'no-human',
        issuers: links.map((l) => l.issuer),
      }),
    }
  }

  // A forwarded act: only the human rule, vouched for by the mesh that owns the resource.
  async #foreignRules(
    path: ChainPath,
    presented: VerifiedCredential[],
    now: number,
  ): Promise<
    { error: AuthorityFailure; human?: undefined } | { error?: undefined; human: string | undefined }
  > {
    const { links, capability } = path
    const owner = resourceOwner(capability.with)
    if (!this.#humanRequired(capability.can)) return { human: undefined }
    for (const link of links) {
      if (link.issuer === owner) continue
      if (await this.#isHuman(link.issuer, presented, now, owner)) return { human: link.issuer }
    }
    return {
      error: ucanFailure('MESH_NOT_HUMAN_SIGNED', `no human of ${owner} signed in this chain`, {
        reason: 'no-human',
        issuers: links.map((l) => l.issuer),
      }),
    }
  }

  // A human: a valid membership credential says so — from this mesh (localOnly), from
  // one given mesh (a did), or from this mesh or any mesh believed (false).
  async #isHuman(
    did: string,
    presented: VerifiedCredential[],
    now: number,
    localOnly: boolean | string,
  ): Promise<boolean> {
    const fits = (c: VerifiedCredential) =>
      c.subject === did &&
      c.membership?.kind === 'human' &&
      (typeof localOnly === 'string'
        ? c.issuer === localOnly && did !== localOnly
        : localOnly
          ? c.issuer === this.meshDid
          : c.issuer === this.meshDid || this.#acceptIssuer(c.issuer))
    if (presented.some(fits)) return true
    for (const jwt of this.#held.get(did) ?? []) {
      const result = await this.credentials.verifyCredential(jwt, { now })
      if (result.ok !== undefined && fits(result.ok)) return true
    }
    return false
  }

  // After a key rotation the credentials the old key issued no longer vouch here.
  #holdsMembership(did: string, issuer: string): boolean {
    return [...(this.#held.get(did) ?? [])].some((jwt) => jwtIssuerOf(jwt) === issuer)
  }

  async #storeCredential(subject: string, jwt: string): Promise<void> {
    const id = createHash('sha256').update(jwt).digest('base64url')
    await this.#credentialsSub.put(`1/${subject}/${id}`, jwt)
    this.#hold(subject, jwt)
  }

  #hold(subject: string, jwt: string): void {
    let set = this.#held.get(subject)
    if (set === undefined) {
      set = new Set()
      this.#held.set(subject, set)
    }
    set.add(jwt)
  }

  #applyRoot(record: RootRecord): void {
    const decoded = decodeToken(record.token)
    if (decoded.error !== undefined)
      throw new Error(`stored root delegation is unreadable: ${decoded.error.message}`)
    for (const [cid, block] of decoded.ok.blocks) this.#localBlocks.set(cid, block)
    this.#root = record
  }

  // Kept past exp by two skews and a margin: after that the time check refuses it anyway.
  #forgetAt(exp: number): number {
    return exp * 1000 + 2 * this.#skew * 1000 + 60_000
  }
}

/** Presented credentials whose check waits until the chain needs them. */
interface LaterCredentials {
  presentation?: string
  /** [place in the request, JWT] */
  credentials: [number, string][]
}

// Whether checking this JWT (a credential, or a presentation and what it holds) fetches a did:web.
function needsDidWeb(jwt: unknown, depth = 0): boolean {
  if (typeof jwt !== 'string') return false
  let payload: { iss?: unknown; vp?: { verifiableCredential?: unknown } }
  try {
    payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'))
  } catch {
    return false
  }
  if (typeof payload !== 'object' || payload === null) return false
  if (typeof payload.iss === 'string' && payload.iss.startsWith('did:web:')) return true
  const inner = payload.vp?.verifiableCredential
  return depth === 0 && Array.isArray(inner) && inner.some((c) => needsDidWeb(c, 1))
}

function tierFailure(message: string, details: Record<string, unknown>): AuthorityFailure {
  return { code: 'MESH_TIER_FORBIDDEN', message, proof: 'ucan', details }
}

/** A refused verdict as the MeshError an HTTP route or stream handler reports. */
export function toMeshError(error: AuthorityError): MeshError {
  return new MeshError(error.code, error.message, {
    proof: error.proof,
    ...error.details,
    failed: error.failed,
  })
}
