/** `mesh status`, `mesh whoami`: which node a client command reaches, and as whom. */
import type { Command } from 'commander'
import { apiUrl, clientCommand, signingKey } from '../client.ts'
import type { CliContext } from '../context.ts'
import { HttpClient, signIn } from '../http-client.ts'
import { apiOption, dataOption } from '../options.ts'

export function registerSessionCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx

  cli
    .command('status')
    .description("show a running node's identity, addresses and what it has discovered")
    .addOption(dataOption())
    .addOption(apiOption())
    .option('--capability <name>', 'only meshes offering this capability (e.g. agent/invoke)') // SPEC §10
    .action(async (options: { data: string; api?: string; capability?: string }) => {
      const client = new HttpClient(await apiUrl(options))
      const health = await client.call('health')
      const query = {
        limit: '100',
        ...(options.capability !== undefined ? { capability: options.capability } : {}),
      }
      const list = await client.call('publicMeshes', { query })
      out.print(
        { ...health, meshes: list.meshes },
        [
          `did:     ${health.did}`,
          `peer:    ${health.peerId}`,
          `version: ${health.version}`,
          `listen:  ${health.multiaddrs.join(' ')}`,
          `meshes:  ${list.meshes.length} known`,
          ...list.meshes.map(
            (m) =>
              `  ${m.status.padEnd(8)} ${m.name.padEnd(20)} ${m.did}${m.http !== undefined ? `  ${m.http}` : ''}`,
          ),
        ].join('\n'),
      )
    })

  clientCommand(cli, 'whoami', 'sign in to a node with a human key and show the session', {
    proof: false,
  }).action(async (options: { data: string; api?: string; as?: string }) => {
    const key = await signingKey(ctx.keystore(), options)
    const client = await signIn(await apiUrl(options), key)
    const me = await client.call('me')
    out.print(me, `${me.did} (${me.role})`)
  })
}
