/**
 * `mesh room create|invite|join|sync`, `mesh rooms`, `mesh share`, `mesh post`,
 * `mesh messages`, `mesh members`, `mesh dm`, `mesh notifications`.
 */
import { type Command, Option } from 'commander'
import type { RoomSyncStatus, RoomVisibility, Transfer as TransferProgress } from '../../api/index.ts'
import { roomResourceOf } from '../../auth/authority/index.ts'
import { HUMAN_ACTS } from '../../auth/index.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'
import { positiveInt } from '../options.ts'
// room lifecycle and consent (SPEC §9)
import { registerRoomLifecycleCommands } from './room-lifecycle.ts'

function transferLine(label: string, p: TransferProgress): string {
  if (p.startedAt === null) return `${label}: not started`
  const state = p.doneAt !== null ? 'done' : 'in progress'
  return `${label}: ${p.entriesDone}/${p.entries} entries, ${p.chunksDone}/${p.chunks} chunks, ${p.bytesDone}/${p.bytes} bytes (${state})`
}

function syncText(s: RoomSyncStatus): string {
  return [
    `room ${s.room}  ${s.caughtUp ? 'caught up' : 'catching up'}  ${s.messages} messages  state vector ${s.stateVector}`,
    ...(s.peers.length === 0 ? ['  not shared with any mesh'] : []),
    ...s.peers.flatMap((p) => [
      `  ${(p.name ?? '?').padEnd(16)} ${p.direction.padEnd(3)} link ${p.link.padEnd(6)} ${p.caughtUp ? 'caught up' : 'behind'}  ${p.peer}`,
      `    ${transferLine('from peer', p.incoming)}`,
      `    ${transferLine('to peer  ', p.outgoing)}`,
      ...(p.behind !== null
        ? [`    peer lacks ${p.behind.entries} entries (${p.behind.bytes} bytes) we know of`]
        : []),
      ...(p.lastError !== null ? [`    last error: ${p.lastError.code} ${p.lastError.message}`] : []),
    ]),
  ].join('\n')
}

export function registerRoomCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx
  const session = (options: ClientOptions) => humanSession(ctx.keystore(), options)
  const room = cli.command('room').description('rooms of this mesh')
  // room lifecycle and consent (SPEC §9)
  registerRoomLifecycleCommands(cli, room, ctx)
  const roomClient = (name: string, description: string) =>
    clientCommand(room, name, description, { proof: false })

  roomClient('create <name>', 'create a room homed at this mesh')
    .option('--topic <text>', 'what the room is about')
    .addOption(
      new Option(
        '--visibility <visibility>',
        'public: every local principal may find and join it; invite: members only',
      )
        .choices(['public', 'invite'])
        .default('public'),
    )
    .action(async (name: string, options: ClientOptions & { topic?: string; visibility: RoomVisibility }) => {
      const { client: api } = await session(options)
      const res = await api.call('createRoom', {
        body: {
          name,
          ...(options.topic !== undefined ? { topic: options.topic } : {}),
          visibility: options.visibility,
        },
      })
      out.print(res, `room ${res.id} ${res.name} created`)
    })

  roomClient('invite <room> <did>', 'add a principal of this mesh to a room (owner or moderator)').action(
    async (id: string, did: string, options: ClientOptions) => {
      const { client: api } = await session(options)
      const res = await api.call('inviteToRoom', { params: { id }, body: { did } })
      out.print(res, `invited ${res.name} (${res.role})`)
    },
  )

  roomClient('join <room>', 'join a room this mesh holds').action(
    async (id: string, options: ClientOptions) => {
      const { client: api } = await session(options)
      const res = await api.call('joinRoom', { params: { id } })
      out.print(res, `joined as ${res.name} (${res.role})`)
    },
  )

  roomClient('sync <room>', 'catch-up progress of a shared room with each peer mesh').action(
    async (id: string, options: ClientOptions) => {
      const { client: api } = await session(options)
      const s = await api.call('roomSync', { params: { id } })
      out.print(s, syncText(s))
    },
  )

  clientCommand(cli, 'rooms', 'list the rooms this mesh holds (🌐 = shared with other meshes)').action(
    async (options: ClientOptions) => {
      const { client: api } = await session(options)
      const { rooms } = await api.call('listRooms')
      out.print(
        rooms,
        rooms.length === 0
          ? 'no rooms'
          : rooms
              .map(
                (r) =>
                  `${r.id}  ${r.federated ? '🌐' : '  '} ${listedName(r)}${r.topic ? ` — ${r.topic}` : ''}`,
              )
              .join('\n'),
      )
    },
  )

  clientCommand(
    cli,
    'share <room> <mesh-did>',
    'share a room with a connected mesh (signed by your human key)',
  ).action(async (id: string, mesh: string, options: ClientOptions) => {
    const { client: api, chainAct } = await session(options)
    const res = await api.call('shareRoom', {
      params: { id },
      body: {
        mesh,
        ucan: await chainAct(HUMAN_ACTS.roomShare, mesh, roomResourceOf(api.meshDid as string, id)),
      },
    })
    // room lifecycle (SPEC §9): a share is an invitation until the peer accepts it
    const pending = res.status === 'pending' ? ' (an invitation until that mesh accepts it)' : ''
    out.print(res, `room ${res.room} shared with ${res.peer}${pending}`)
  })

  clientCommand(cli, 'post <room> <text>', 'post a message').action(
    async (id: string, text: string, options: ClientOptions) => {
      const { client: api } = await session(options)
      const res = await api.call('postMessage', { params: { id }, body: { body: text } })
      out.print(res, res.id)
    },
  )

  clientCommand(cli, 'messages <room>', 'read messages, oldest first')
    .option('--after <id>', 'only messages after this one')
    .addOption(new Option('--limit <n>', 'messages (1–200)').argParser(positiveInt).default(50))
    .action(async (id: string, options: ClientOptions & { after?: string; limit: number }) => {
      const { client: api } = await session(options)
      const page = await api.call('listMessages', {
        params: { id },
        query: { limit: String(options.limit), after: options.after },
      })
      out.print(
        page,
        [
          ...page.messages.map(
            (m) => `${new Date(m.ts).toISOString()} ${m.author}: ${m.redacted ? '(redacted)' : m.body}`,
          ),
          ...(page.nextCursor !== null ? [`… more after ${page.nextCursor}`] : []),
        ].join('\n') || 'no messages',
      )
    })

  clientCommand(cli, 'members <room>', 'members of a room').action(
    async (id: string, options: ClientOptions) => {
      const { client: api } = await session(options)
      const { members } = await api.call('roomMembers', { params: { id } })
      out.print(
        members,
        members
          .map(
            (m) =>
              `${m.name.padEnd(32)} ${m.role.padEnd(10)} tier ${m.tier}  ${(m.kind ?? '?').padEnd(5)}  ${m.did}`,
          )
          .join('\n'),
      )
    },
  )

  clientCommand(
    cli,
    'dm <did>',
    'open a federated DM with a principal of a connected mesh (signed by your human key)',
  )
    .option('--mesh <did>', 'the principal’s mesh (default: found among shared rooms)')
    .action(async (did: string, options: ClientOptions & { mesh?: string }) => {
      const { client: api, chainAct } = await session(options)
      const res = await api.call('openFederatedDm', {
        body: {
          with: did,
          // A DM's room does not exist yet: the chain is on the mesh, nb.peer = the principal.
          ucan: await chainAct(HUMAN_ACTS.roomShare, did),
          ...(options.mesh !== undefined ? { mesh: options.mesh } : {}),
        },
      })
      out.print(res, `dm room ${res.room} (${res.name}) with ${did}`)
    })

  clientCommand(cli, 'notifications', 'mentions of you, newest first').action(
    async (options: ClientOptions) => {
      const { client: api } = await session(options)
      const page = await api.call('notifications')
      out.print(
        page,
        page.notifications
          .map((n) => `${new Date(n.ts).toISOString()} #${n.roomName} ${n.author}: ${n.body}`)
          .join('\n') || 'no notifications',
      )
    },
  )
}

/** A DM is listed by who it is with (their names), not by its stored `dm <did tail>@<mesh>`. */
export function listedName(r: { name: string; with?: readonly { name: string }[] }): string {
  return r.with !== undefined && r.with.length > 0
    ? `dm with ${r.with.map((w) => w.name).join(', ')}`
    : r.name
}
