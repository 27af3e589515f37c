/**
 * `mesh outbound invoke`: a skill of a connected mesh's agent, carried there by your own node
 * over libp2p; `mesh outbound post|read`: a room of a connected mesh, under its chain.
 */
import { type Command, Option } from 'commander'
import { agentResourceOf, roomResourceOf } from '../../auth/authority/index.ts'
import { givenProofs, invocationToken } from '../chains.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'
import { jsonInput, positiveInt } from '../options.ts'

export function registerOutboundCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx
  const outbound = cli
    .command('outbound')
    .description('reach connected meshes through this node (/mesh/invoke/1.0.0)')

  clientCommand(
    outbound,
    'invoke <mesh-did> <agent> <skill>',
    "invoke a skill of a connected mesh's agent through this node (agent/invoke signed by --as, with --proof delegations from that mesh)",
  )
    .option('--input <json>', 'the skill’s input, JSON')
    .action(
      async (mesh: string, agent: string, skill: string, options: ClientOptions & { input?: string }) => {
        const input = jsonInput(options.input)
        // Signed in to this node as --as; the invocation is --as's own, addressed to the peer.
        const { key, client } = await humanSession(ctx.keystore(), options)
        const ucan = await invocationToken(
          key,
          mesh,
          {
            can: 'agent/invoke',
            with: agentResourceOf(mesh, agent),
            nb: { ability: skill, ...(input !== undefined ? { input } : {}) },
          },
          await givenProofs(options.proof),
        )
        const res = await client.call('outboundInvoke', { body: { mesh, ucan } })
        out.print(res, JSON.stringify((res.answer as { result?: unknown }).result ?? null, null, 2))
      },
    )
  // one invocation dispatcher: room/post and room/read of a connected mesh's room, over libp2p
  const roomInvoke = async (
    options: ClientOptions,
    mesh: string,
    room: string,
    can: 'room/post' | 'room/read',
    nb: Record<string, unknown>,
  ) => {
    const { key, client } = await humanSession(ctx.keystore(), options)
    const ucan = await invocationToken(
      key,
      mesh,
      { can, with: roomResourceOf(mesh, room), nb },
      await givenProofs(options.proof),
    )
    return client.call('outboundInvoke', { body: { mesh, ucan } })
  }
  clientCommand(
    outbound,
    'post <mesh-did> <room> <body>',
    "post to a connected mesh's room through this node (room/post signed by --as, with --proof delegations from that mesh)",
  ).action(async (mesh: string, room: string, body: string, options: ClientOptions) => {
    const res = await roomInvoke(options, mesh, room, 'room/post', { body })
    out.print(res, (res.answer as { result?: { id?: string } }).result?.id ?? '')
  })
  clientCommand(
    outbound,
    'read <mesh-did> <room>',
    "read a connected mesh's room through this node (room/read signed by --as, with --proof delegations from that mesh)",
  )
    .option('--after <id>', 'only messages after this one')
    .addOption(new Option('--limit <n>', 'messages (1–200)').argParser(positiveInt))
    .action(
      async (mesh: string, room: string, options: ClientOptions & { after?: string; limit?: number }) => {
        const nb = {
          ...(options.after !== undefined ? { after: options.after } : {}),
          ...(options.limit !== undefined ? { limit: options.limit } : {}),
        }
        const res = await roomInvoke(options, mesh, room, 'room/read', nb)
        const page = (res.answer as { result?: { messages?: Array<{ author: string; body: string }> } })
          .result
        out.print(res, page?.messages?.map((m) => `${m.author}: ${m.body}`).join('\n') || 'no messages')
      },
    )
}
