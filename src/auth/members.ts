import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'
import type { Tier } from './authority/index.ts'
import type { SessionRole } from './sessions.ts'

export type MemberKind = 'human' | 'agent'

/** Someone enrolled in this mesh besides its architect: a human member or an agent. */
export interface Member {
  did: string
  kind: MemberKind
  /** Its local name: how rooms show it (`@name:mesh`). */
  name: string
  /** A label of the mesh's (default `user` for a human, `agent` for an agent). */
  role: string
  /** The tier it was enrolled at (the live tier is the trust store's). */
  tier: Tier
  enrolledAt: string
  /** The did whose act enrolled it (the mesh did for the node's own agents). */
  enrolledBy: string
}

/** A member as the API lists it (the architect among them). */
export interface MemberView extends Member {
  localId: string
}

/** What older versions stored: `{did, role: 'human'|'agent', name}`. */
interface StoredMember extends Partial<Member> {
  did: string
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
  /** When the mesh was created: the architect's enrolment. */
  createdAt?: string
  /** This mesh's live tier of a principal (the trust store's); default the tier stored at enrolment. */
  tierOf?: (did: string) => Tier | undefined
}

export const DEFAULT_ROLE: Readonly<Record<MemberKind, string>> = { human: 'user', agent: 'agent' }

/**
 * The mesh's people and agents (the `members` sublevel, `<did>` → Member). The architect
 * is not stored there: it is the mesh's own info, and counts as a member everywhere.
 */
export class MemberBook {
  readonly #members: Sublevel<StoredMember>
  readonly #init: MemberBookInit
  readonly #architectName: string

  constructor(init: MemberBookInit) {
    this.#members = init.store.sublevel<StoredMember>('members')
    this.#init = init
    this.#architectName = init.architectKeyName ?? 'architect'
  }

  get architectDid(): string {
    return this.#init.architectDid
  }

  /** Rewrites records of the old shape (`{did, role, name}`) in the new one; returns how many. */
  async migrate(now = new Date().toISOString()): Promise<number> {
    const ops: StoreOperation[] = []
    for await (const stored of this.#members.values()) {
      if (stored.kind !== undefined) continue
      ops.push(this.putOperation(upgrade(stored, now)))
    }
    if (ops.length > 0) await this.#init.store.batch(ops)
    return ops.length
  }

  async get(did: string): Promise<Member | undefined> {
    const stored = await this.#members.get(did)
    return stored === undefined ? undefined : upgrade(stored)
  }

  /** The member named `name` (names are unique in a mesh; the architect's among them). */
  async byName(name: string): Promise<MemberView | undefined> {
    for (const member of await this.list()) if (member.name === name) return member
    return undefined
  }

  /** The session role of `did`, if it is the architect or a member: `architect`, else its kind. */
  async role(did: string): Promise<SessionRole | undefined> {
    if (did === this.#init.architectDid) return 'architect'
    return (await this.get(did))?.kind
  }

  /** The architect acts at tier 1, a member at its tier here; anyone else is no local principal. */
  async localPrincipal(did: string): Promise<MemberPrincipal | undefined> {
    if (did === this.#init.architectDid) return { localId: this.#architectName, tier: 1 }
    const member = await this.get(did)
    return member === undefined
      ? undefined
      : { localId: member.name, tier: this.#init.tierOf?.(did) ?? member.tier }
  }

  /** Every member, the architect first, then by name; `tier` is the live tier. */
  async list(): Promise<MemberView[]> {
    const members: MemberView[] = []
    for await (const stored of this.#members.values()) {
      const member = upgrade(stored)
      members.push({ ...member, localId: member.name, tier: this.#init.tierOf?.(member.did) ?? member.tier })
    }
    members.sort((a, b) => a.name.localeCompare(b.name))
    const architect: MemberView = {
      did: this.#init.architectDid,
      kind: 'human',
      name: this.#architectName,
      localId: this.#architectName,
      role: 'architect',
      tier: 1,
      enrolledAt: this.#init.createdAt ?? new Date(0).toISOString(),
      enrolledBy: this.#init.architectDid,
    }
    return [architect, ...members]
  }

  /**
   * Enrols a member unless its did is already enrolled (an earlier enrolment stands).
   * Missing fields take their defaults (role by kind, tier 4, now, enrolled by itself).
   */
  async enroll(member: Pick<Member, 'did' | 'kind' | 'name'> & Partial<Member>): Promise<void> {
    if ((await this.get(member.did)) !== undefined) return
    await this.#init.store.batch([this.putOperation(complete(member))])
  }

  /** The operation that stores `member` (for a batch with its audit row). */
  putOperation(member: Member): StoreOperation {
    return { type: 'put', sublevel: this.#members, key: member.did, value: member } as StoreOperation
  }

  /** The operation that takes `did` out of the book. */
  delOperation(did: string): StoreOperation {
    return { type: 'del', sublevel: this.#members, key: did } as StoreOperation
  }

  /** How many members (humans, the architect among them) and bots (agents) the mesh has. */
  async counts(): Promise<{ members: number; bots: number }> {
    let members = 1
    let bots = 0
    for await (const stored of this.#members.values()) {
      if (upgrade(stored).kind === 'agent') bots++
      else members++
    }
    return { members, bots }
  }
}

/** A member with every field, its defaults filled in. */
export function complete(member: Pick<Member, 'did' | 'kind' | 'name'> & Partial<Member>): Member {
  return {
    did: member.did,
    kind: member.kind,
    name: member.name,
    role: member.role ?? DEFAULT_ROLE[member.kind],
    tier: member.tier ?? 4,
    enrolledAt: member.enrolledAt ?? new Date().toISOString(),
    enrolledBy: member.enrolledBy ?? member.did,
  }
}

// An old record's `role` was its session role: `agent` (the built-in agents, tier 3) or `human`.
function upgrade(stored: StoredMember, now = new Date(0).toISOString()): Member {
  if (stored.kind !== undefined) return stored as Member
  const kind: MemberKind = stored.role === 'agent' ? 'agent' : 'human'
  return {
    did: stored.did,
    kind,
    name: stored.name,
    role: DEFAULT_ROLE[kind],
    tier: kind === 'agent' ? 3 : 4,
    enrolledAt: now,
    enrolledBy: stored.did,
  }
}
