import type { AuditLog } from '../audit/index.ts'
import { BadRequestError, ConflictError, ForbiddenError, SignatureMismatchError } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { MeshStore, StoreOperation } from '../store/index.ts'
import type { Authority, AuthorityOk, Revocation } from './authority/index.ts'
import {
  DelegationBook,
  type DelegationFacts,
  delegationFacts,
  type IssuedDelegation,
  jwtIssuerOf,
  type RevocationNotice,
  signRevocationNotice,
  verifyRevocationNotice,
} from './authority/index.ts'

/** Most membership credentials sent with a notice (those of the delegation's issuer). */
const MAX_NOTICE_CREDENTIALS = 4

/** What travels to peers with a revocation: the signed notice, the delegation, its issuer's credentials. */
export interface RevocationAnnouncement {
  notice: RevocationNotice
  /** The revoked delegation's token: the peer reads its issuer from it and checks its CID. */
  delegation: string
  /** Membership credentials this mesh issued to the delegation's issuer. */
  credentials: string[]
}

/** A peer mesh, as a revocation it sent is judged against. */
export interface RevokingPeer {
  /** Its identity did (what this mesh files it under). */
  identity: string
  /** Every mesh key known to be its own. */
  keys: string[]
  /** The architect it declared. */
  architectDid: string | null
}

export interface RevokeInput {
  cid: string
  ucan: string
  /** The delegation's token, when this mesh has not recorded it. */
  delegation?: string
  credentials?: string[]
  presentation?: string
}

export interface RevokeResult {
  revocation: Revocation
  /** Peers the signed notice was queued for (none: not a delegation of this mesh's principals). */
  announcedTo: string[]
}

export interface RevocationServiceInit {
  store: MeshStore
  audit: Pick<AuditLog, 'append'>
  /** Getters: a key rotation replaces the authority and the key. */
  authority: () => Pick<
    Authority,
    'meshDid' | 'revoke' | 'revocations' | 'heldCredentials' | 'credentials' | 'trust'
  >
  key: () => Ed25519KeyPair
  architectDid: () => string
  /** Every did this mesh's key has been (its identity and rotated keys); default the current key. */
  ownDids?: () => string[]
  /** Queues the announcement for every connected peer; returns them. Without it nothing travels. */
  announce?: (announcement: RevocationAnnouncement) => Promise<string[]>
  now?: () => number
  logger?: Logger
}

/**
 * Revocation people can use (SPEC §9):
 *
 * - `record`: the delegations this mesh's principals issue are recorded (by the CLI and
 *   the console when they issue one), so that they can be listed and revoked by CID.
 * - `revoke`: a `ucan/revoke` act of a human of this mesh — the architect (any
 *   delegation), or the delegation's own issuer when a human member. A delegation a
 *   principal of this mesh issued is then announced to every connected peer, signed by
 *   the mesh key; any other is revoked here only.
 * - `receive`: a peer's notice holds here only when it is signed by that peer's key and
 *   the delegation was issued by one of that peer's principals (its mesh key, its
 *   architect, or a member its membership credential names) — never by one of ours.
 *
 * Revocations are kept for good (RevokedSet), so they hold after restarts everywhere.
 */
export class RevocationService {
  readonly #init: RevocationServiceInit
  readonly #book: DelegationBook
  readonly #now: () => number
  readonly #log: Logger

  constructor(init: RevocationServiceInit) {
    this.#init = init
    this.#book = new DelegationBook({ store: init.store })
    this.#now = init.now ?? Date.now
    this.#log = (init.logger ?? silentLogger()).child({ area: 'auth.revocations' })
  }

  async start(): Promise<void> {
    await this.#book.open()
  }

  async stop(): Promise<void> {}

  /** Delegations this mesh's principals issued (newest first) and every revocation held here (newest first). */
  list(): {
    delegations: Array<IssuedDelegation & { revoked: Revocation | null }>
    revocations: Revocation[]
  } {
    const revocations = this.#init.authority().revocations
    return {
      delegations: this.#book.list().map((d) => ({ ...d, revoked: revocations.get(d.cid) ?? null })),
      revocations: revocations.list().sort((a, b) => b.at.localeCompare(a.at)),
    }
  }

  /**
   * Records a delegation issued by a principal of this mesh; `by` (the session) must be
   * its issuer or the architect. Recording it again returns the first record.
   */
  async record(token: string, by: string): Promise<IssuedDelegation & { revoked: Revocation | null }> {
    const facts = delegationFacts(token)
    const known = this.#book.get(facts.cid)
    if (known !== undefined) {
      return { ...known, revoked: this.#init.authority().revocations.get(known.cid) ?? null }
    }
    if (!this.#isOurs(facts.issuer)) {
      throw new ForbiddenError('only delegations issued by a principal of this mesh are recorded', {
        issuer: facts.issuer,
        reason: 'not-ours',
      })
    }
    if (by !== facts.issuer && by !== this.#init.architectDid()) {
      throw new ForbiddenError('a delegation is recorded by its issuer or the architect', {
        issuer: facts.issuer,
        by,
      })
    }
    const record = this.#issued(facts, token, by)
    await this.#init.store.batch(this.#book.operations(record))
    this.#book.applied(record)
    return { ...record, revoked: this.#init.authority().revocations.get(record.cid) ?? null }
  }

  /**
   * Revokes the delegation `input.cid` on a `ucan/revoke` act (nb.ucan = the CID) of the
   * architect or of the delegation's issuer (a human member); announces it to the peers
   * when one of this mesh's principals issued it.
   */
  async revoke(input: RevokeInput): Promise<RevokeResult> {
    const authority = this.#init.authority()
    if (authority.revocations.isRevoked(input.cid)) {
      throw new ConflictError('this delegation is already revoked', { cid: input.cid })
    }
    const given = input.delegation === undefined ? undefined : delegationFacts(input.delegation, input.cid)
    const known = this.#book.get(input.cid)
    const facts: DelegationFacts | undefined = given ?? known
    const token = input.delegation ?? known?.token
    let announcement: RevocationAnnouncement | undefined
    let recorded: IssuedDelegation | undefined
    const complete = async (revocation: Revocation, ok: AuthorityOk) => {
      if (revocation.cid !== input.cid) {
        throw new BadRequestError('the body and the signed ucan/revoke act name different delegations', {
          cid: input.cid,
          signed: revocation.cid,
        })
      }
      const invoker = ok.issuer
      const architect = invoker === this.#init.architectDid()
      const issuer = facts !== undefined && facts.issuer === invoker && this.#isLocalHuman(invoker)
      if (!architect && !issuer) {
        throw new ForbiddenError(
          'a delegation is revoked by its issuer (a human of this mesh) or the architect',
          {
            cid: input.cid,
            by: invoker,
            issuer: facts?.issuer ?? null,
            reason: 'not-the-issuer',
          },
        )
      }
      const operations: StoreOperation[] = []
      const done: Revocation = { ...revocation, mesh: authority.meshDid }
      if (facts !== undefined && token !== undefined && this.#isOurs(facts.issuer)) {
        done.notice = signRevocationNotice(this.#init.key(), {
          cid: revocation.cid,
          by: invoker,
          at: revocation.at,
          reason: revocation.reason,
        })
        announcement = {
          notice: done.notice,
          delegation: token,
          credentials: this.#credentialsOf(facts.issuer),
        }
        if (known === undefined) {
          recorded = this.#issued(facts, token, invoker)
          operations.push(...this.#book.operations(recorded))
        }
      }
      return { revocation: done, operations }
    }
    const revocation = await authority.revoke(input.ucan, {
      complete,
      ...(input.credentials === undefined ? {} : { credentials: input.credentials }),
      ...(input.presentation === undefined ? {} : { presentation: input.presentation }),
    })
    if (recorded !== undefined) this.#book.applied(recorded)
    let announcedTo: string[] = []
    if (announcement !== undefined && this.#init.announce !== undefined) {
      // The revocation holds here whatever happens next; a failure to queue is logged.
      announcedTo = await this.#init.announce(announcement).catch((err: unknown) => {
        this.#log.error(
          { event: 'auth.delegation.announce_failed', cid: revocation.cid, err },
          'the revocation could not be queued for the peers',
        )
        return []
      })
    }
    this.#log.info(
      { event: 'auth.delegation.revoked', cid: revocation.cid, by: revocation.by, announcedTo },
      'delegation revoked',
    )
    return { revocation, announcedTo }
  }

  /**
   * A revocation a peer sent: checked (its notice signed by one of `peer`'s keys, the
   * delegation the one named, issued by a principal of that peer and of no other mesh
   * this one answers for), then kept with an audit row in one batch with `operations`
   * (the envelope's seen id). Returns false when it was revoked here already (only
   * `operations` are written).
   */
  async receive(
    announcement: RevocationAnnouncement,
    peer: RevokingPeer,
    operations: StoreOperation[],
  ): Promise<boolean> {
    const { notice } = announcement
    if (!peer.keys.includes(notice.mesh) || !verifyRevocationNotice(notice)) {
      throw new SignatureMismatchError('the revocation is not signed by this peer’s key', {
        mesh: notice.mesh,
        peer: peer.identity,
        reason: 'notice-signature',
      })
    }
    const facts = delegationFacts(announcement.delegation, notice.cid)
    if (this.#isOurs(facts.issuer) || !(await this.#isTheirs(facts.issuer, peer, announcement.credentials))) {
      throw new ForbiddenError('a mesh can only revoke what its own principals issued', {
        cid: notice.cid,
        issuer: facts.issuer,
        peer: peer.identity,
        reason: 'not-their-principal',
      })
    }
    const authority = this.#init.authority()
    if (authority.revocations.isRevoked(notice.cid)) {
      await this.#init.store.batch(operations)
      return false
    }
    const revocation: Revocation = {
      cid: notice.cid,
      by: notice.by,
      reason: notice.reason,
      at: notice.at,
      invocation: notice.signature,
      mesh: peer.identity,
      notice,
    }
    await this.#init.audit.append(
      {
        action: 'ucan.revoked',
        actor: peer.identity,
        subject: notice.cid,
        details: { by: notice.by, reason: notice.reason, issuer: facts.issuer, peer: peer.identity },
      },
      { with: [...authority.revocations.operations([revocation]), ...operations] },
    )
    authority.revocations.applied([revocation])
    this.#log.info(
      { event: 'auth.delegation.revoked_by_peer', cid: notice.cid, peer: peer.identity, by: notice.by },
      'a peer revoked a delegation',
    )
    return true
  }

  /** A principal of this mesh: its key (any it held), its architect, or a member (also a removed one). */
  #isOurs(did: string): boolean {
    const authority = this.#init.authority()
    if (did === authority.meshDid || did === this.#init.architectDid()) return true
    if (this.#init.ownDids?.().includes(did) === true) return true
    const record = authority.trust.get(did)
    return record !== undefined && (record.local || record.removed !== undefined)
  }

  #isLocalHuman(did: string): boolean {
    const record = this.#init.authority().trust.get(did)
    return record?.local === true && record.kind === 'human'
  }

  async #isTheirs(did: string, peer: RevokingPeer, credentials: string[]): Promise<boolean> {
    if (peer.keys.includes(did) || did === peer.architectDid) return true
    const authority = this.#init.authority()
    for (const jwt of credentials.slice(0, MAX_NOTICE_CREDENTIALS)) {
      const verified = await authority.credentials.verifyCredential(jwt, { now: this.#now() })
      if (verified.error !== undefined) continue
      const membership = verified.ok.membership
      if (
        membership !== undefined &&
        verified.ok.subject === did &&
        peer.keys.includes(verified.ok.issuer) &&
        peer.keys.includes(membership.mesh)
      ) {
        return true
      }
    }
    return false
  }

  #credentialsOf(did: string): string[] {
    const authority = this.#init.authority()
    return authority
      .heldCredentials(did)
      .filter((jwt) => jwtIssuerOf(jwt) === authority.meshDid)
      .slice(0, MAX_NOTICE_CREDENTIALS)
  }

  #issued(facts: DelegationFacts, token: string, by: string): IssuedDelegation {
    return { ...facts, token, recordedAt: new Date(this.#now()).toISOString(), recordedBy: by }
  }
}
