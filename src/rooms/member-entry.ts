import { type MemberKind, memberKind } from './member-credential.ts'
import type { MemberEntry, MemberRole, Tier } from './room-entries.ts'

/** What the room module needs to know about a principal of this mesh. */
export interface LocalPrincipal {
  /** The name shown as `@local_id`. */
  localId: string
  /** The principal's tier at this mesh (1 architect … 4 normal). */
  tier: Tier
}

export interface MemberView {
  did: string
  /** `@local_id` or `@local_id:mesh-name`. */
  name: string
  localId: string
  mesh: string
  meshName: string
  role: MemberRole
  tier: Tier
  local: boolean
  /** Human or agent, as the member's credential from its mesh says; absent when unknown. */
  kind?: MemberKind
}

/**
 * A member entry this mesh writes for one of its principals, with its membership
 * credential (`vc`) when it has one: peers read its kind there (member-credential.ts).
 */
export function ownMemberEntry(
  mesh: { ownMesh: string; meshName: string },
  input: { room: string; did: string; principal: LocalPrincipal; role: MemberRole; tier: Tier; ts: number },
  vc: string | undefined,
): MemberEntry {
  return {
    v: 1,
    room: input.room,
    did: input.did,
    mesh: mesh.ownMesh,
    meshName: mesh.meshName,
    localId: input.principal.localId,
    role: input.role,
    tier: input.tier,
    ts: input.ts,
    ...(vc !== undefined ? { vc } : {}),
  }
}

/** How the API shows a member entry to a principal of `ownMesh`. */
export function memberView(m: MemberEntry, ownMesh: string): MemberView {
  const local = m.mesh === ownMesh
  const kind = memberKind(m)
  return {
    did: m.did,
    name: local ? `@${m.localId}` : `@${m.localId}:${m.meshName}`,
    localId: m.localId,
    mesh: m.mesh,
    meshName: m.meshName,
    role: m.role as MemberRole, // effective members never hold an ending
    tier: m.tier,
    local,
    ...(kind !== undefined ? { kind } : {}),
  }
}
