import type { AuditLog } from '../audit/index.ts'
import { BadRequestError, ForbiddenError, MeshError, NotFoundError } from '../errors.ts'
import { isDidKey } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { ActGate, GateAct } from './acts/index.ts'
import type { Authority, Membership } from './authority/index.ts'
import { jwtIssuerOf, MAX_DELEGATING_TIER, verifyMembership } from './authority/index.ts'
import {
  complete,
  DEFAULT_ROLE,
  type Member,
  type MemberBook,
  type MemberKind,
  type MemberView,
} from './members.ts'

export const MEMBER_ACTS = { enrol: 'mesh/enrol', remove: 'mesh/remove' } as const

export interface MemberServiceInit {
  book: MemberBook
  /** Getters: a key rotation replaces the authority (and the gate reads it). */
  acts: () => Pick<ActGate, 'local' | 'peek' | 'withAct'>
  authority: () => Pick<
    Authority,
    'meshDid' | 'trust' | 'enrollMember' | 'removeMember' | 'heldCredentials' | 'credentials'
  >
  audit: Pick<AuditLog, 'append'>
  logger?: Logger
}

export interface EnrolInput {
  did: string
  kind: MemberKind
  name: string
  role?: string
  ucan: string
}

type Hook = (did: string) => unknown

/**
 * Enrolment and removal of this mesh's members (SPEC §8), each a human act:
 * `mesh/enrol` (with = the mesh, `nb: {did, kind, role}`) and `mesh/remove`
 * (`nb: {did}`), signed by the architect or a human member at tier ≤ 2 — the invoker
 * itself, not a principal it delegated to (an agent invoking on a human's delegation
 * is MESH_NOT_HUMAN_SIGNED; a human at tier 3–4 is MESH_FORBIDDEN).
 *
 * Enrolling issues the member's membership credential (VC-JWT by the mesh key: kind,
 * role, tier, exp) and writes the book entry with its `member.enrolled` audit row and
 * the act's spend in one batch. Removing revokes its credentials, marks it removed in
 * the trust store (its old chains are refused), takes it out of the book with a
 * `member.removed` row, then runs the `onRemoved` hooks (sessions end, room
 * memberships end) before it answers.
 */
export class MemberService {
  readonly #init: MemberServiceInit
  readonly #removed = new Set<Hook>()
  readonly #changed = new Set<() => void>()
  readonly #log: Logger

  constructor(init: MemberServiceInit) {
    this.#init = init
    this.#log = (init.logger ?? silentLogger()).child({ area: 'auth.members' })
  }

  get book(): MemberBook {
    return this.#init.book
  }

  list(): Promise<MemberView[]> {
    return this.#init.book.list()
  }

  /** Runs `hook(did)` after each removal, before the removal answers; returns the unsubscribe. */
  onRemoved(hook: Hook): () => void {
    this.#removed.add(hook)
    return () => this.#removed.delete(hook)
  }

  /** Calls `listener` after each enrolment or removal (the counts changed); returns the unsubscribe. */
  onChanged(listener: () => void): () => void {
    this.#changed.add(listener)
    return () => this.#changed.delete(listener)
  }

  async enrol(input: EnrolInput): Promise<MemberView> {
    const { book } = this.#init
    const authority = this.#init.authority()
    const role = input.role ?? DEFAULT_ROLE[input.kind]
    if (!isDidKey(input.did)) throw new BadRequestError('did must be an Ed25519 did:key', { did: input.did })
    if (input.did === authority.meshDid) throw new BadRequestError('the mesh key is no member')
    // The body restates what the act signs; checked before the act is verified (and spent).
    const nb = this.#init.acts().peek(input.ucan).nb
    // An act that names no role enrols at the kind's default role.
    const signedRole = nb.role ?? DEFAULT_ROLE[input.kind]
    if (nb.did !== input.did || nb.kind !== input.kind || signedRole !== role) {
      throw new BadRequestError('the body and the signed mesh/enrol act disagree', {
        signed: { did: nb.did ?? null, kind: nb.kind ?? null, role: nb.role ?? null },
      })
    }
    if (input.did === book.architectDid || (await book.get(input.did)) !== undefined) {
      throw new MeshError('MESH_CONFLICT', 'this did is already a member', { did: input.did })
    }
    if ((await book.byName(input.name)) !== undefined) {
      throw new MeshError('MESH_CONFLICT', 'a member already has this name', { name: input.name })
    }
    const act = await this.#act(input.ucan, MEMBER_ACTS.enrol, input.did)
    return this.#init.acts().withAct(act, async () => {
      const enroller = await this.#enroller(act)
      const member = complete({
        did: input.did,
        kind: input.kind,
        name: input.name,
        role,
        tier: 4,
        enrolledBy: enroller.did,
      })
      await authority.enrollMember(member.did, member, { actor: enroller.did })
      await this.#init.audit.append(
        {
          action: 'member.enrolled',
          actor: enroller.did,
          subject: member.did,
          details: { kind: member.kind, name: member.name, role: member.role, tier: member.tier },
        },
        { with: [book.putOperation(member), ...act.operations] },
      )
      this.#log.info({ event: 'members.enrolled', did: member.did, kind: member.kind }, 'member enrolled')
      this.#notify()
      return { ...member, localId: member.name, tier: authority.trust.tierOf(member.did) }
    })
  }

  async remove(input: { did: string; ucan: string }): Promise<void> {
    const { book } = this.#init
    if (input.did === book.architectDid) throw new ForbiddenError('the architect cannot be removed')
    const member = await book.get(input.did)
    if (member === undefined) throw new NotFoundError('no such member', { did: input.did })
    const act = await this.#act(input.ucan, MEMBER_ACTS.remove, input.did)
    await this.#init.acts().withAct(act, async () => {
      const remover = await this.#enroller(act)
      const authority = this.#init.authority()
      if (remover.tier > authority.trust.tierOf(member.did)) {
        throw new ForbiddenError(
          'a member at a more privileged tier is removed only by one at least as trusted',
          {
            tier: remover.tier,
          },
        )
      }
      await authority.removeMember(member.did, { actor: remover.did })
      await this.#init.audit.append(
        {
          action: 'member.removed',
          actor: remover.did,
          subject: member.did,
          details: { kind: member.kind, name: member.name, role: member.role },
        },
        { with: [book.delOperation(member.did), ...act.operations] },
      )
    })
    this.#log.info({ event: 'members.removed', did: member.did }, 'member removed')
    this.#notify()
    const failures: unknown[] = []
    for (const hook of this.#removed) {
      try {
        await hook(member.did)
      } catch (err) {
        failures.push(err)
        this.#log.error(
          { event: 'members.removed_hook_failed', did: member.did, err },
          'a removal hook failed',
        )
      }
    }
    if (failures.length > 0) throw failures[0]
  }

  /**
   * The membership credential of a member (or the architect): the one held, when it is
   * this mesh key's and says the member's kind, role and live tier; else a fresh one
   * (after a promotion or a key rotation).
   */
  async credential(did: string): Promise<string> {
    const view = (await this.#init.book.list()).find((m) => m.did === did)
    if (view === undefined) throw new NotFoundError('no such member', { did })
    const authority = this.#init.authority()
    for (const jwt of authority.heldCredentials(did)) {
      if (jwtIssuerOf(jwt) !== authority.meshDid) continue
      const result = await this.verify(jwt)
      if (result.error !== undefined) continue
      const m = result.ok
      if (m.id === did && m.kind === view.kind && m.role === view.role && m.tier === view.tier) return jwt
    }
    return authority.enrollMember(did, { kind: view.kind, role: view.role, tier: view.tier })
  }

  /**
   * Gives every member a credential of the current mesh key where it holds none (after a
   * key rotation the old key's no longer vouch here); returns how many were issued.
   */
  async reissue(): Promise<number> {
    const authority = this.#init.authority()
    let issued = 0
    for (const m of await this.#init.book.list()) {
      if (m.did === this.#init.book.architectDid) continue
      if (authority.heldCredentials(m.did).some((jwt) => jwtIssuerOf(jwt) === authority.meshDid)) continue
      await authority.enrollMember(m.did, { kind: m.kind, role: m.role, tier: m.tier })
      issued++
    }
    return issued
  }

  /** Checks a membership credential as a peer would, for this mesh (see verifyMembership). */
  verify(jwt: unknown, now?: number): ReturnType<typeof verifyMembership> {
    const authority = this.#init.authority()
    return verifyMembership(authority.credentials, jwt, {
      mesh: authority.meshDid,
      ...(now === undefined ? {} : { now }),
    })
  }

  #act(token: string, act: string, subject: string): Promise<GateAct> {
    const meshDid = this.#init.authority().meshDid
    return this.#init.acts().local(token, { audience: meshDid, act, subject })
  }

  // Who signed an enrolment or removal: a human of this mesh, itself the invoker, at tier ≤ 2.
  async #enroller(act: GateAct): Promise<{ did: string; tier: number }> {
    const did = act.issuer
    const role = await this.#init.book.role(did)
    if (role === 'agent' || act.human !== did) {
      throw new MeshError(
        'MESH_NOT_HUMAN_SIGNED',
        'members are enrolled and removed by a human, signing it',
        {
          invoker: did,
          human: act.human ?? null,
        },
      )
    }
    if (role === undefined)
      throw new ForbiddenError('only a member of this mesh may do this', { invoker: did })
    const tier = this.#init.authority().trust.tierOf(did)
    if (tier > MAX_DELEGATING_TIER) {
      throw new ForbiddenError(`a tier ${tier} member may not enrol or remove members`, {
        invoker: did,
        tier,
      })
    }
    return { did, tier }
  }

  #notify(): void {
    for (const listener of this.#changed) {
      try {
        listener()
      } catch (err) {
        this.#log.error({ event: 'members.changed_listener_failed', err }, 'a members listener failed')
      }
    }
  }
}

export type { Member, Membership }
