import type { MeshStore, Sublevel } from '../store/index.ts'
import type { Tier } from './authority/index.ts'
import type { SessionRole } from './sessions.ts'

/** Someone enrolled in this mesh besides its architect: a human member or an agent. */
export interface Member {
  did: string
  role: Exclude<SessionRole, 'architect'>
  name: string
}

/** One of this mesh's own as rooms show it: its local name and the tier it acts at. */
export interface MemberPrincipal {
  localId: string
  tier: Tier
}

export interface MemberBookInit {
  store: MeshStore
  architectDid: string
  /** The architect's key name in the keystore, when init created it there; its name in rooms. */
  architectKeyName?: string
}

/**
 * The mesh's people and agents (the `members` sublevel). The architect is not stored
 * there: it is the mesh's own info, and counts as a member everywhere.
 */
export class MemberBook {
  readonly #members: Sublevel<Member>
  readonly #architectDid: string
  readonly #architectName: string

  constructor(init: MemberBookInit) {
    this.#members = init.store.sublevel<Member>('members')
    this.#architectDid = init.architectDid
    this.#architectName = init.architectKeyName ?? 'architect'
  }

  async get(did: string): Promise<Member | undefined> {
    return this.#members.get(did)
  }

  /** The session role of `did`, if it is the architect or a member. */
  async role(did: string): Promise<SessionRole | undefined> {
    if (did === this.#architectDid) return 'architect'
    return (await this.get(did))?.role
  }

  /** The architect acts at tier 1, a member at tier 4; anyone else is no local principal. */
  async localPrincipal(did: string): Promise<MemberPrincipal | undefined> {
    if (did === this.#architectDid) return { localId: this.#architectName, tier: 1 }
    const member = await this.get(did)
    return member === undefined ? undefined : { localId: member.name, tier: 4 }
  }

  /** Enrols `member` unless its did is already enrolled (an earlier enrolment stands). */
  async enroll(member: Member): Promise<void> {
    if ((await this.get(member.did)) === undefined) await this.#members.put(member.did, member)
  }

  /** How many members (the architect among them) and bots (agents) the mesh has. */
  async counts(): Promise<{ members: number; bots: number }> {
    let members = 1
    let bots = 0
    for await (const member of this.#members.values()) {
      if (member.role === 'agent') bots++
      else members++
    }
    return { members, bots }
  }
}
