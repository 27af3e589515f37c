/**
 * Room lifecycle and consent (SPEC §9): `mesh invitations`, `mesh invitation
 * accept|decline <id>`, `mesh unshare <room> <mesh-did>`, `mesh leave <room>`,
 * `mesh room remove <room> <did>`, `mesh room role <room> <did> <role>`. Every
 * decision is a chain signed by your human key.
 */
import type { Command } from 'commander'
import { type Invitation, MEMBER_ROLES, type MemberRole, type ShareView } from '../../api/index.ts'
import { roomResourceOf } from '../../auth/authority/index.ts'
import { HUMAN_ACTS } from '../../auth/index.ts'
import { MeshError } from '../../errors.ts'
import { chainProofs, invocationToken } from '../chains.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'

function invitationLine(i: Invitation): string {
  const ended = i.endedBy !== undefined ? `  ended (${i.endedBy}) ${i.endedAt}` : ''
  return `${i.id}  ${i.status.padEnd(8)} ${i.name} (${i.room}) from ${i.peerName ?? '?'} ${i.peer}${ended}`
}

function shareLine(s: ShareView): string {
  return `room ${s.room} ${s.direction === 'out' ? 'to' : 'from'} ${s.peer}: ${s.shared ? 'shared' : `not shared${s.endedBy !== undefined ? ` (ended by ${s.endedBy} ${s.endedAt})` : ''}`}`
}

export function registerRoomLifecycleCommands(cli: Command, room: Command, ctx: CliContext): void {
  const { out } = ctx
  const session = (options: ClientOptions) => humanSession(ctx.keystore(), options)

  clientCommand(cli, 'invitations', 'rooms other meshes shared with this mesh, pending ones first', {
    proof: false,
  }).action(async (options: ClientOptions) => {
    const { client: api } = await session(options)
    const { invitations } = await api.call('listInvitations')
    out.print(invitations, invitations.map(invitationLine).join('\n') || 'no invitations')
  })

  const invitation = cli.command('invitation').description('answer a room shared with this mesh')
  for (const answer of ['accept', 'decline'] as const) {
    clientCommand(
      invitation,
      `${answer} <id>`,
      `${answer} an invitation (signed by your human key)${answer === 'accept' ? ': the room syncs' : ': nothing of it is stored'}`,
    ).action(async (id: string, options: ClientOptions) => {
      const { client: api, chainAct } = await session(options)
      const { invitations } = await api.call('listInvitations')
      const found = invitations.find((i) => i.id === id)
      if (found === undefined) throw new MeshError('MESH_NOT_FOUND', 'no such invitation', { id })
      const can = answer === 'accept' ? HUMAN_ACTS.roomAccept : HUMAN_ACTS.roomDecline
      const ucan = await chainAct(can, found.peer, roomResourceOf(api.meshDid as string, found.room))
      const res = await api.call(answer === 'accept' ? 'acceptInvitation' : 'declineInvitation', {
        params: { id },
        body: { ucan },
      })
      out.print(res, invitationLine(res))
    })
  }

  clientCommand(
    cli,
    'unshare <room> <mesh-did>',
    'stop sharing a room of this mesh with a mesh: nothing of it crosses that link again (signed by your human key)',
  ).action(async (id: string, mesh: string, options: ClientOptions) => {
    const { client: api, chainAct } = await session(options)
    const ucan = await chainAct(HUMAN_ACTS.roomUnshare, mesh, roomResourceOf(api.meshDid as string, id))
    const res = await api.call('unshareRoom', { params: { id }, body: { mesh, ucan } })
    out.print(res, shareLine(res))
  })

  clientCommand(
    room,
    'remove <room> <did>',
    'remove a member from a room (owner or moderator; signed by your key): its later writes are refused everywhere',
  ).action(async (id: string, did: string, options: ClientOptions) => {
    const { client: api, chainAct } = await session(options)
    const ucan = await chainAct(HUMAN_ACTS.roomRemove, did, roomResourceOf(api.meshDid as string, id))
    await api.call('removeRoomMember', { params: { id, did }, body: { ucan } })
    out.print({ room: id, did, removed: true }, `${did} removed from room ${id}`)
  })

  clientCommand(
    room,
    'role <room> <did> <role>',
    'set a member’s room role: owner | moderator | member | read-only (owner or moderator; signed by your key)',
  ).action(async (id: string, did: string, role: string, options: ClientOptions & { proof?: string[] }) => {
    const { client: api, key } = await session(options)
    if (!(MEMBER_ROLES as readonly string[]).includes(role))
      throw new MeshError('MESH_BAD_REQUEST', 'role is one of owner, moderator, member, read-only', { role })
    const meshDid = api.meshDid as string
    const ucan = await invocationToken(
      key,
      meshDid,
      { can: HUMAN_ACTS.roomRole, with: roomResourceOf(meshDid, id), nb: { did, role } },
      await chainProofs(api, key, options.proof),
    )
    const res = await api.call('setRoomRole', {
      params: { id, did },
      body: { role: role as MemberRole, ucan },
    })
    out.print(res, `${res.name} is now ${res.role} in room ${id}`)
  })

  clientCommand(
    cli,
    'leave <room>',
    'leave a room another mesh shared with this one: nothing of it crosses again; what is here stays (signed by your human key)',
  ).action(async (id: string, options: ClientOptions) => {
    const { client: api, chainAct } = await session(options)
    const ucan = await chainAct(HUMAN_ACTS.roomLeave, undefined, roomResourceOf(api.meshDid as string, id))
    const res = await api.call('leaveRoom', { params: { id }, body: { ucan } })
    out.print(res, res.shares.map(shareLine).join('\n'))
  })
}
