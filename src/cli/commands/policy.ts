/** `mesh policy`: show or change the federation policy. */
import { type Command, Option } from 'commander'
import type { FederationPolicy, PolicyPatch } from '../../api/index.ts'
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
  backfillLimit?: number | null
  // room lifecycle (SPEC §9)
  autoAcceptRooms?: string
}

/** `--backfill-limit`: a number of messages, or `all`. */
const limitOrAll = (value: string) => (value === 'all' ? null : nonNegativeInt(value))

/** A list with `add` added (once each) and `remove` taken out. */
const edit = (list: string[], add: string[] = [], remove: string[] = []) =>
  [...new Set([...list, ...add])].filter((d) => !remove.includes(d))

/** Only the fields the options change (a PATCH), or undefined when they change nothing. */
function policyPatch(policy: FederationPolicy, options: PolicyOptions): PolicyPatch | undefined {
  const patch: PolicyPatch = {
    ...(options.mode !== undefined ? { mode: options.mode } : {}),
    ...(options.allow !== undefined || options.disallow !== undefined
      ? { allow: edit(policy.allow, options.allow, options.disallow) }
      : {}),
    ...(options.deny !== undefined || options.undeny !== undefined
      ? { deny: edit(policy.deny, options.deny, options.undeny) }
      : {}),
    ...(options.autoAccept !== undefined ? { autoAccept: options.autoAccept === 'true' } : {}),
    ...(options.maxForeignParticipants !== undefined
      ? { maxForeignParticipantsPerRoom: options.maxForeignParticipants }
      : {}),
    ...(options.maxBackfill !== undefined ? { maxBackfillEventsPerRequest: options.maxBackfill } : {}),
    ...(options.backfillLimit !== undefined ? { backfillLimit: options.backfillLimit } : {}),
    ...(options.autoAcceptRooms !== undefined ? { autoAcceptRooms: options.autoAcceptRooms === 'true' } : {}),
  }
  return Object.keys(patch).length > 0 ? patch : undefined
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
    .addOption(
      new Option(
        '--backfill-limit <n>',
        'messages of history a newly sharing peer gets: a number (0: none) or all',
      ).argParser(limitOrAll),
    )
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
      const patch = policyPatch(policy, options)
      if (patch !== undefined) policy = await api.call('patchPolicy', { body: patch })
      out.print(
        policy,
        [
          `mode:         ${policy.mode}`,
          `auto-accept:  ${policy.autoAccept}`,
          `allow:        ${policy.allow.join(' ') || '-'}`,
          `deny:         ${policy.deny.join(' ') || '-'}`,
          `max foreign participants per room: ${policy.maxForeignParticipantsPerRoom}`,
          `max backfill events per request:   ${policy.maxBackfillEventsPerRequest}`,
          `history a newly sharing peer gets: ${policy.backfillLimit ?? 'all'}`,
          `auto-accept rooms: ${policy.autoAcceptRooms ?? false}`,
        ].join('\n'),
      )
    })
}
