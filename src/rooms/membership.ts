import { MEMBERSHIP_ENDED, type MemberEntry } from './room-entries.ts'

/** A member entry together with the mesh whose seal made it valid. */
export interface SealedMember {
  key: string
  entry: MemberEntry
  sealedBy: string
}

/**
 * Who is in a room, computed from the append-only member entries, independent of
 * the order in which they arrived:
 * - for each did, the latest entry (by ts, then key) sealed by the room's home mesh
 *   wins, if there is one — the home mesh moderates;
 * - otherwise the latest entry sealed by the member's own mesh;
 * - a did whose membership has ended (`membershipEnds`) is no member at all.
 */
export function effectiveMembers(
  entries: Iterable<SealedMember>,
  homeMesh: string,
): Map<string, MemberEntry> {
  const list = [...entries]
  const out = standingMembers(list, homeMesh)
  const ends = membershipEnds(list, homeMesh)
  if (ends.size > 0) for (const [did, m] of out) if (ends.has(endKey(m.mesh, did))) out.delete(did)
  return out
}

/**
 * The membership each did held before any ending: by which the writes it made while
 * still a member (dated before the end) are judged, whenever they arrive.
 */
export function standingMembers(entries: Iterable<SealedMember>, homeMesh: string): Map<string, MemberEntry> {
  const best = new Map<string, SealedMember>()
  for (const candidate of entries) {
    if (candidate.entry.role === MEMBERSHIP_ENDED) continue
    const did = candidate.entry.did
    const current = best.get(did)
    if (current === undefined || outranks(candidate, current, homeMesh)) best.set(did, candidate)
  }
  const out = new Map<string, MemberEntry>()
  for (const [did, m] of best) out.set(did, m.entry)
  return out
}

/** The key of `membershipEnds`: a did as a member from one mesh. */
export function endKey(mesh: string, did: string): string {
  return `${mesh} ${did}`
}

/**
 * When each membership ended (`endKey(mesh, did)` → the earliest ending's `ts`): an
 * entry with role `removed` sealed by the member's own mesh (`entry.mesh`: it removed
 * the member) or by the room's home mesh. An ending is final: no later entry undoes
 * it, so every replica, in whatever order entries reach it, refuses the same writes:
 * those by that did from that mesh dated at or after the ending.
 */
export function membershipEnds(entries: Iterable<SealedMember>, homeMesh: string): Map<string, number> {
  const ends = new Map<string, number>()
  for (const { entry, sealedBy } of entries) {
    if (entry.role !== MEMBERSHIP_ENDED) continue
    if (sealedBy !== entry.mesh && sealedBy !== homeMesh) continue
    const k = endKey(entry.mesh, entry.did)
    const seen = ends.get(k)
    if (seen === undefined || entry.ts < seen) ends.set(k, entry.ts)
  }
  return ends
}

/** The roles a mesh other than the home mesh may seal for its own members (tier 4 only). */
export const FOREIGN_MEMBER_ROLES: readonly string[] = ['member', 'read-only', MEMBERSHIP_ENDED]

/**
 * Members as of a write's date (validate-update.ts): a write by a did stands by the
 * membership it held before any ending (`standing`) if dated before the ending
 * (`endedAt`), and is refused from the ending on. `current`: the effective members,
 * equal to the standing ones while nothing has ended.
 */
export function membersByDate(entries: SealedMember[], homeMesh: string, current: Map<string, MemberEntry>) {
  const ends = membershipEnds(entries, homeMesh)
  const standing = ends.size === 0 ? current : standingMembers(entries, homeMesh)
  return { standing, endedAt: (did: string, mesh: string) => ends.get(endKey(mesh, did)) }
}

function outranks(a: SealedMember, b: SealedMember, homeMesh: string): boolean {
  const aHome = a.sealedBy === homeMesh
  const bHome = b.sealedBy === homeMesh
  if (aHome !== bHome) return aHome
  if (a.entry.ts !== b.entry.ts) return a.entry.ts > b.entry.ts
  return a.key > b.key
}

export function canWrite(member: MemberEntry | undefined, mesh: string): boolean {
  return member !== undefined && member.mesh === mesh && member.role !== 'read-only'
}

export function isModerator(member: MemberEntry | undefined): boolean {
  return member !== undefined && (member.role === 'owner' || member.role === 'moderator')
}

/** How many of `members` are from another mesh than the home mesh (the foreign-participant limit). */
export function foreignCount(members: Map<string, MemberEntry>, homeMesh: string): number {
  let n = 0
  for (const m of members.values()) if (m.mesh !== homeMesh) n++
  return n
}
