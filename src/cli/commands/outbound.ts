/** `mesh outbound invoke`: a skill of a connected mesh's agent, carried there by your own node over libp2p. */
import type { Command } from 'commander'
import { agentResourceOf } from '../../auth/authority/index.ts'
import { givenProofs, invocationToken } from '../chains.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'
import { jsonInput } from '../options.ts'

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
}
