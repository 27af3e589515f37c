/** `mesh usage`: the model proxy's usage per principal (SPEC §13). */
import type { Command } from 'commander'
import type { UsageView } from '../../api/index.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'

const limit = (value: number | undefined) => (value === undefined ? '∞' : String(value))

function usageLine(u: UsageView): string {
  return [
    `${u.principal}  tier ${u.tier}`,
    `  ${u.requests} requests (${u.refused} refused, ${u.failed} failed), ${u.totalTokens} tokens (${u.promptTokens} prompt, ${u.completionTokens} completion)`,
    `  this minute ${u.minute.requests}/${limit(u.limits.requestsPerMinute)} requests, ${u.minute.tokens}/${limit(u.limits.tokensPerMinute)} tokens`,
    `  today ${u.day.requests}/${limit(u.limits.requestsPerDay)} requests, ${u.day.tokens}/${limit(u.limits.tokensPerDay)} tokens`,
    `  last ${u.lastAt ?? 'never'}`,
  ].join('\n')
}

export function registerUsageCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx
  clientCommand(
    cli,
    'usage',
    'the model proxy’s usage per principal: yours, or (architect, tier 2) everyone’s or --principal’s',
    { proof: false },
  )
    .option('--principal <did>', 'one principal')
    .action(async (options: ClientOptions & { principal?: string }) => {
      const { client } = await humanSession(ctx.keystore(), options)
      const res = await client.call('usage', {
        query: options.principal !== undefined ? { principal: options.principal } : {},
      })
      out.print(res, res.usage.length === 0 ? 'no usage yet' : res.usage.map(usageLine).join('\n'))
    })
}
