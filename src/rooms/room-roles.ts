import { ForbiddenError, NotFoundError } from '../errors.ts'
import { isModerator } from './membership.ts'
import type { Room } from './room.ts'
import { contentId, MEMBERSHIP_ENDED, type MemberEntry, type MemberRole } from './room-entries.ts'

/** What room roles and endings need of the RoomManager. */
export interface RoomRolesHost {
  readonly ownMesh: string
  list(): Promise<Array<{ id: string }>>
  load(id: string): Promise<Room>
  access(roomId: string, did: string): Promise<{ room: Room; member?: MemberEntry }>
  /** One of this mesh's principals' membership credential now (a fresh one after a rotation or a year). */
  credentialOf?(did: string): Promise<string | undefined>
}

/**
 * Sets the room role of member `did` (SPEC §9 `PUT /api/rooms/:id/members/:did`): by the
 * room's `owner` or a `moderator` (a local member of it), as an entry this mesh seals.
 * Only an owner grants or changes `owner`. In a room homed elsewhere this mesh may seal
 * only its own members as `member` or `read-only` (validate-update.ts, member rules), so
 * that is all it sets there. Anything else: MESH_FORBIDDEN; a did that is not a member:
 * MESH_NOT_FOUND. Returns the member's new entry (the held one when nothing changes).
 */
export async function setRoomRole(
  host: RoomRolesHost,
  input: { room: string; actor: string; did: string; role: MemberRole; now: number },
): Promise<MemberEntry> {
  const { room, member: actor } = await host.access(input.room, input.actor)
  if (!isModerator(actor))
    throw new ForbiddenError('only an owner or a moderator of the room sets roles', {
      room: input.room,
      reason: 'not-moderator',
    })
  const target = room.member(input.did)
  if (target === undefined) throw new NotFoundError('not a member of this room', { did: input.did })
  if ((target.role === 'owner' || input.role === 'owner') && actor?.role !== 'owner')
    throw new ForbiddenError('only an owner grants or changes the owner role', {
      room: input.room,
      reason: 'owner-only',
    })
  const home = room.homeMesh === host.ownMesh
  if (!home && (target.mesh !== host.ownMesh || (input.role !== 'member' && input.role !== 'read-only')))
    throw new ForbiddenError('the room’s home mesh sets this role', { room: input.room, reason: 'not-home' })
  if (target.role === input.role) return target
  const entry: MemberEntry = { ...target, role: input.role, ts: Math.max(input.now, laterThan(room, target)) }
  // Kinds across meshes: this mesh's own member carries its current credential.
  const vc = target.mesh === host.ownMesh ? await host.credentialOf?.(target.did) : undefined
  if (vc !== undefined) entry.vc = vc
  await room.write([{ map: 'members', key: contentId(entry), value: entry }])
  return entry
}

/**
 * Ends every room membership of `did` (one of this mesh's principals, just removed):
 * in each room where it is a member from this mesh, an entry with role `removed`,
 * sealed by this mesh and dated `now`. Every replica, local or foreign, then refuses
 * its writes dated at or after it (membership.ts `membershipEnds`). Returns the rooms
 * it was ended in; a room already ended is left as is.
 */
export async function endMemberships(host: RoomRolesHost, did: string, now: number): Promise<string[]> {
  const ended: string[] = []
  for (const record of await host.list()) {
    const room = await host.load(record.id)
    const member = room.member(did)
    if (member === undefined || member.mesh !== host.ownMesh) continue
    await endOne(room, member, room.homeMesh === host.ownMesh, now)
    ended.push(record.id)
  }
  return ended
}

/**
 * Writes the entry that ends `member`'s membership (role `removed`), sealed by this mesh:
 * dated after everything it wrote, so that none of its accepted writes becomes refusable.
 */
async function endOne(room: Room, member: MemberEntry, home: boolean, now: number): Promise<MemberEntry> {
  const entry: MemberEntry = {
    ...member,
    role: MEMBERSHIP_ENDED,
    // A foreign room takes this mesh's entries at tier 4 only.
    tier: home ? member.tier : 4,
    ts: Math.max(now, laterThan(room, member), lastWrite(room, member.did, member.mesh) + 1),
  }
  await room.write([{ map: 'members', key: contentId(entry), value: entry }])
  return entry
}

// room lifecycle (SPEC §9): the owner or a moderator removes a member
/**
 * Removes member `did` from a room (`DELETE /api/rooms/:id/members/:did`): by the room's
 * `owner` or a `moderator` (a local member of it); only an owner removes an owner. The
 * home mesh ends any member's membership, local or foreign; a mesh that does not home
 * the room ends only its own members'. The ending entry is sealed by this mesh and
 * reaches every replica, which refuses the member's later writes (`membership-ended`).
 */
export async function removeRoomMember(
  host: RoomRolesHost,
  input: { room: string; actor: string; did: string; now: number },
): Promise<MemberEntry> {
  const { room, member: actor } = await host.access(input.room, input.actor)
  if (!isModerator(actor))
    throw new ForbiddenError('only an owner or a moderator of the room removes members', {
      room: input.room,
      reason: 'not-moderator',
    })
  const target = room.member(input.did)
  if (target === undefined) throw new NotFoundError('not a member of this room', { did: input.did })
  if (target.role === 'owner' && actor?.role !== 'owner')
    throw new ForbiddenError('only an owner removes an owner', { room: input.room, reason: 'owner-only' })
  const home = room.homeMesh === host.ownMesh
  if (!home && target.mesh !== host.ownMesh)
    throw new ForbiddenError('the room’s home mesh removes members of other meshes', {
      room: input.room,
      reason: 'not-home',
    })
  return endOne(room, target, home, input.now)
}

/**
 * A date after `member`'s entry and any entry of the same membership written this turn
 * (issue 15, batch15: the turn's writes reach the room together at its end).
 */
export function laterThan(room: Room, member: Pick<MemberEntry, 'did' | 'mesh' | 'ts'>): number {
  let last = member.ts
  for (const { value } of room.queued('members')) {
    const e = value as MemberEntry
    if (e.did === member.did && e.mesh === member.mesh && e.ts > last) last = e.ts
  }
  return last + 1
}

/** The latest date of a message, reaction, redaction or task entry by `did` from `mesh` in the room (0 if none). */
function lastWrite(room: Room, did: string, mesh: string): number {
  let last = 0
  // tasks across meshes (SPEC §13): task entries are writes too
  for (const map of ['messages', 'reactions', 'redactions', 'tasks'] as const)
    for (const v of [...room.doc.getMap(map).values(), ...room.queued(map).map((q) => q.value)]) {
      const e = v as { author: string; authorMesh: string; ts: number }
      if (e.author === did && e.authorMesh === mesh && e.ts > last) last = e.ts
    }
  return last
}

/** MESH_FORBIDDEN when `did`'s membership of the room from `mesh` has ended (it is final). */
export function assertNotEnded(room: Room, did: string, mesh: string): void {
  if (room.endedAt(did, mesh) !== undefined)
    throw new ForbiddenError('this membership of the room has ended', {
      room: room.id,
      reason: 'membership-ended',
    })
}
