/** `mesh key new`, `mesh key rotate`: human keys in the keystore, and the mesh key's rotation. */
import type { Command } from 'commander'
import { HUMAN_ACTS } from '../../auth/index.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'

export function registerKeyCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx
  const keyCommand = cli
    .command('key')
    .description('human keys in the keystore ($MESH_KEYSTORE, ~/.mesh-keys)')

  keyCommand
    .command('new <name>')
    .description('create a human key in the keystore')
    .action(async (name: string) => {
      const key = await ctx.keystore().create(name)
      out.print({ name, did: key.did, path: ctx.keystore().pathOf(name) }, `${name} ${key.did}`)
    })

  clientCommand(
    keyCommand,
    'rotate',
    "rotate the running mesh's key (your signed act); peers, registry and DHT are told",
    { proof: false },
  ).action(async (options: ClientOptions) => {
    const { client: api, chainAct } = await humanSession(ctx.keystore(), options)
    const res = await api.call('rotateKey', { body: { ucan: await chainAct(HUMAN_ACTS.rotateKey) } })
    out.print(
      res,
      [
        `mesh key rotated (rotation ${res.seq})`,
        `  identity: ${res.identity}`,
        `  previous: ${res.previous}`,
        `  current:  ${res.did}`,
        `  peer:     ${res.peerId}`,
        `  announced to ${res.announcedTo.length} peer(s)`,
      ].join('\n'),
    )
  })
}
