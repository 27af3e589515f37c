/** `mesh errors`: every MESH_… code and what it means. */
import type { Command } from 'commander'
import { ERROR_MEANING, type MeshErrorCode } from '../../errors.ts'
import type { CliContext } from '../context.ts'

export function registerErrorCommands(cli: Command, ctx: CliContext): void {
  cli
    .command('errors')
    .description('list every MESH_… error code and what it means')
    .action(() => {
      const rows = Object.entries(ERROR_MEANING) as Array<[MeshErrorCode, string]>
      ctx.out.print(
        Object.fromEntries(rows),
        rows.map(([code, meaning]) => `${code.padEnd(26)} ${meaning}`).join('\n'),
      )
    })
}
