/** `mesh policy`: show or change the federation policy. */
import { type Command, Option } from 'commander'
import type { FederationPolicy } from '../../api/index.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'
import { collect, nonNegativeInt } from '../options.ts'

type PolicyOptions = ClientOptions & {
  mode?: FederationPolicy['mode']
  allow?: string[]
  disallow?: string[]
  deny?: string[]
  undeny?: string[]
  autoAccept?: string
  maxForeignParticipants?: number
  maxBackfill?: number
  // room lifecycle (SPEC §9)
  autoAcceptRooms?: string
}

/** A list with `add` added (once each) and `remove` taken out. */
const edit = (list: string[], add: string[] = [], remove: string[] = []) =>
  [...new Set([...list, ...add])].filter((d) => !remove.includes(d))

/** The policy with the options' changes, or undefined when the options change nothing. */
function changedPolicy(policy: FederationPolicy, options: PolicyOptions): FederationPolicy | undefined {
  const changed =
    options.mode !== undefined ||
    options.allow !== undefined ||
    options.disallow !== undefined ||
    options.deny !== undefined ||
    options.undeny !== undefined ||
    options.autoAccept !== undefined ||
    options.maxForeignParticipants !== undefined ||
    options.maxBackfill !== undefined ||
    options.autoAcceptRooms !== undefined
  if (!changed) return undefined
  return {
    ...policy,
    ...(options.mode !== undefined ? { mode: options.mode } : {}),
    allow: edit(policy.allow, options.allow, options.disallow),
    deny: edit(policy.deny, options.deny, options.undeny),
    ...(options.autoAccept !== undefined ? { autoAccept: options.autoAccept === 'true' } : {}),
    ...(options.maxForeignParticipants !== undefined
      ? { maxForeignParticipantsPerRoom: options.maxForeignParticipants }
      : {}),
    ...(options.maxBackfill !== undefined ? { maxBackfillEventsPerRequest: options.maxBackfill } : {}),
    ...(options.autoAcceptRooms !== undefined ? { autoAcceptRooms: options.autoAcceptRooms === 'true' } : {}),
  }
}

export function registerPolicyCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx

  clientCommand(cli, 'policy', 'show or change the federation policy')
    .addOption(
      new Option('--mode <mode>', 'open | allowlist | closed').choices(['open', 'allowlist', 'closed']),
    )
    .option('--allow <did>', 'add to the allow list (repeatable)', collect)
    .option('--disallow <did>', 'remove from the allow list (repeatable)', collect)
    .option('--deny <did>', 'add to the deny list (repeatable)', collect)
    .option('--undeny <did>', 'remove from the deny list (repeatable)', collect)
    .addOption(
      new Option('--auto-accept <bool>', 'accept requests that pass the policy').choices(['true', 'false']),
    )
    .addOption(new Option('--max-foreign-participants <n>', 'per room').argParser(nonNegativeInt))
    .addOption(new Option('--max-backfill <n>', 'events per backfill request').argParser(nonNegativeInt))
    // room lifecycle (SPEC §9)
    .addOption(
      new Option('--auto-accept-rooms <bool>', 'accept every room shared with this mesh at once').choices([
        'true',
        'false',
      ]),
    )
    .action(async (options: PolicyOptions) => {
      const { client: api } = await humanSession(ctx.keystore(), options)
      let policy = await api.call('getPolicy')
      const changed = changedPolicy(policy, options)
      if (changed !== undefined) policy = await api.call('putPolicy', { body: changed })
      out.print(
        policy,
        [
          `mode:         ${policy.mode}`,
          `auto-accept:  ${policy.autoAccept}`,
          `allow:        ${policy.allow.join(' ') || '-'}`,
          `deny:         ${policy.deny.join(' ') || '-'}`,
          `max foreign participants per room: ${policy.maxForeignParticipantsPerRoom}`,
          `max backfill events per request:   ${policy.maxBackfillEventsPerRequest}`,
          `auto-accept rooms: ${policy.autoAcceptRooms ?? false}`,
        ].join('\n'),
      )
    })
}
