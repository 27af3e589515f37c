/** `mesh member add|list|remove|credential`: this mesh's humans and agents (SPEC §8). */
import { type Command, Option } from 'commander'
import type { MemberKind, MemberView } from '../../api/index.ts'
import { DEFAULT_ROLE, MEMBER_ACTS } from '../../auth/index.ts'
import { MeshError } from '../../errors.ts'
import { chainProofs, invocationToken } from '../chains.ts'
import { type ClientOptions, clientCommand, type HumanSession, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'

function memberLine(m: MemberView): string {
  return `${m.name.padEnd(20)} ${m.kind.padEnd(6)} ${m.role.padEnd(10)} tier ${m.tier}  ${m.did}`
}

export function registerMemberCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx
  const member = cli.command('member').description('the humans and agents of this mesh')
  const session = (options: ClientOptions) => humanSession(ctx.keystore(), options)
  // A did as given, or the did of a key in the keystore (its name is the default member name).
  const principal = async (target: string): Promise<{ did: string; keyName?: string }> =>
    target.startsWith('did:')
      ? { did: target }
      : { did: (await ctx.keystore().load(target)).did, keyName: target }
  // A mesh/enrol or mesh/remove act of the signer on its own mesh, with these caveats.
  const act = async (s: HumanSession, options: ClientOptions, can: string, nb: Record<string, string>) => {
    const meshDid = s.client.meshDid as string
    return invocationToken(
      s.key,
      meshDid,
      { can, with: meshDid, nb },
      await chainProofs(s.client, s.key, options.proof),
    )
  }

  clientCommand(member, 'add <did|key-name>', 'enrol a human or an agent (your signed mesh/enrol)')
    .addOption(
      new Option('--kind <kind>', 'human or agent').choices(['human', 'agent']).makeOptionMandatory(),
    )
    .option('--name <name>', 'its name in this mesh (default: the key name)')
    .option('--role <role>', 'its role (default: user for a human, agent for an agent)')
    .action(
      async (target: string, options: ClientOptions & { kind: MemberKind; name?: string; role?: string }) => {
        const { did, keyName } = await principal(target)
        const name = options.name ?? keyName
        if (name === undefined) throw new MeshError('MESH_BAD_REQUEST', 'pass --name NAME with a did')
        const s = await session(options)
        const role = options.role ?? DEFAULT_ROLE[options.kind]
        const ucan = await act(s, options, MEMBER_ACTS.enrol, { did, kind: options.kind, role })
        const res = await s.client.call('enrolMember', {
          body: { did, kind: options.kind, name, ...(options.role !== undefined ? { role } : {}), ucan },
        })
        out.print(res, `enrolled ${memberLine(res)}`)
      },
    )

  clientCommand(member, 'list', 'every member, the architect first', { proof: false }).action(
    async (options: ClientOptions) => {
      const { client } = await session(options)
      const res = await client.call('listMembers')
      out.print(res, res.members.map(memberLine).join('\n'))
    },
  )

  clientCommand(
    member,
    'remove <did|key-name>',
    'remove a member: its sessions end, its credential is revoked (your signed mesh/remove)',
  ).action(async (target: string, options: ClientOptions) => {
    const { did } = await principal(target)
    const s = await session(options)
    const ucan = await act(s, options, MEMBER_ACTS.remove, { did })
    await s.client.call('removeMember', { params: { did }, body: { ucan } })
    out.print({ removed: did }, `removed ${did}`)
  })

  clientCommand(member, 'credential <did|key-name>', 'its membership credential (a VC-JWT by the mesh key)', {
    proof: false,
  }).action(async (target: string, options: ClientOptions) => {
    const { did } = await principal(target)
    const { client } = await session(options)
    const res = await client.call('memberCredential', { params: { did } })
    out.print(res, res.vc)
  })
}
