import type { MemberEntry } from './room-entries.ts'

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
 * - otherwise the latest entry sealed by the member's own mesh.
 */
export function effectiveMembers(
  entries: Iterable<SealedMember>,
  homeMesh: string,
): Map<string, MemberEntry> {
  const best = new Map<string, SealedMember>()
  for (const candidate of entries) {
    const did = candidate.entry.did
    const current = best.get(did)
    if (current === undefined || outranks(candidate, current, homeMesh)) best.set(did, candidate)
  }
  const out = new Map<string, MemberEntry>()
  for (const [did, m] of best) out.set(did, m.entry)
  return out
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
