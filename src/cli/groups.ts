/**
 * Issue 15 (cold start): the command groups (src/cli/commands/) with the top-level
 * commands each registers, so `mesh <command>` loads and registers only the group that
 * has it; `mesh`, `mesh --help`, `mesh help …`, `mesh --version` and an unknown command
 * load them all (the full listing, commander's suggestions). test/cli/groups.test.ts
 * checks each group registers exactly the commands listed here.
 */
import type { Command } from 'commander'
import type { CliContext } from './context.ts'

export type Register = (cli: Command, ctx: CliContext) => void

export interface CommandGroup {
  /** The top-level commands the group registers. */
  commands: readonly string[]
  load(): Promise<Register>
}

/** In this order `mesh --help` lists them. A new group: append it with its commands. */
export const COMMAND_GROUPS: readonly CommandGroup[] = [
  {
    commands: ['init', 'start', 'registry'],
    load: async () => (await import('./commands/node.ts')).registerNodeCommands,
  },
  {
    commands: ['status', 'whoami'],
    load: async () => (await import('./commands/session.ts')).registerSessionCommands,
  },
  { commands: ['key'], load: async () => (await import('./commands/keys.ts')).registerKeyCommands },
  {
    commands: [
      'connect',
      'requests',
      'connections',
      'accept',
      'decline',
      'disconnect',
      'pause',
      'resume',
      'peers',
    ],
    load: async () => (await import('./commands/connections.ts')).registerConnectionCommands,
  },
  { commands: ['policy'], load: async () => (await import('./commands/policy.ts')).registerPolicyCommands },
  {
    commands: ['audit', 'rejected'],
    load: async () => (await import('./commands/audit.ts')).registerAuditCommands,
  },
  {
    commands: ['trust', 'delegate', 'invoke'],
    load: async () => (await import('./commands/authority.ts')).registerAuthorityCommands,
  },
  {
    commands: [
      'room',
      'invitations',
      'invitation',
      'unshare',
      'leave',
      'rooms',
      'share',
      'post',
      'messages',
      'members',
      'dm',
      'notifications',
    ],
    load: async () => (await import('./commands/rooms.ts')).registerRoomCommands,
  },
  { commands: ['errors'], load: async () => (await import('./commands/errors.ts')).registerErrorCommands },
  // members: enrolment and removal (SPEC §8)
  { commands: ['member'], load: async () => (await import('./commands/members.ts')).registerMemberCommands },
  // outbound invocation over libp2p
  {
    commands: ['outbound'],
    load: async () => (await import('./commands/outbound.ts')).registerOutboundCommands,
  },
  // revocation people can use (SPEC §9)
  {
    commands: ['revoke', 'delegations'],
    load: async () => (await import('./commands/revocation.ts')).registerRevocationCommands,
  },
  // tasks across meshes (SPEC §13)
  { commands: ['task'], load: async () => (await import('./commands/tasks.ts')).registerTaskCommands },
  // the model proxy (SPEC §13)
  { commands: ['usage'], load: async () => (await import('./commands/usage.ts')).registerUsageCommands },
  // coordination fees (SPEC §10)
  { commands: ['ledger'], load: async () => (await import('./commands/ledger.ts')).registerLedgerCommands },
  // files in rooms (issue 18)
  { commands: ['file'], load: async () => (await import('./commands/files.ts')).registerFileCommands },
]

/**
 * The groups a run needs: the one whose command the argv names (its first word that is
 * not an option: the root's only options, --json, --help and --version, take no value),
 * or every group when it names none of theirs.
 */
export function groupsFor(argv: readonly string[]): readonly CommandGroup[] {
  const name = argv.slice(2).find((arg) => !arg.startsWith('-'))
  const named = COMMAND_GROUPS.filter((group) => name !== undefined && group.commands.includes(name))
  return named.length === 1 ? named : COMMAND_GROUPS
}
