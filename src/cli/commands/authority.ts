/** `mesh trust`, `mesh delegate`, `mesh invoke`: tiers, and UCANs signed by your key. */
import { type Command, Option } from 'commander'
import type { TrustView } from '../../api/index.ts'
import { agentResourceOf, roomResourceOf } from '../../auth/authority/index.ts'
import { MeshError } from '../../errors.ts'
import { chainProofs, delegationToken, givenProofs, invocationToken } from '../chains.ts'
import { type ClientOptions, clientCommand, humanSession, signingKey } from '../client.ts'
import type { CliContext } from '../context.ts'
import { HttpClient } from '../http-client.ts'
import { collect, didArgument, jsonInput, positiveInt } from '../options.ts'

const tierOf = (value: string) => {
  const n = Number(value)
  if (!(n === 2 || n === 3 || n === 4)) throw new MeshError('MESH_BAD_REQUEST', 'a tier is 2, 3 or 4')
  return n
}

function trustLine(r: TrustView): string {
  const who = r.local
    ? `${r.kind ?? 'member'}/${r.role ?? '?'}`
    : r.scope === 'mesh'
      ? 'peer mesh'
      : 'foreign'
  // A name first when the node knows one (issue 14: names, not dids); the did stays, for copying.
  const named = r.name !== undefined ? `${r.name}  ${r.did}` : r.did
  return `tier ${r.tier}  score ${r.score.toFixed(3)}  +${r.accepted}/-${r.refused}  ${who.padEnd(16)} ${named}${r.tierReason ? `  (${r.tierReason})` : ''}`
}

export function registerAuthorityCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx
  const session = (options: ClientOptions) => humanSession(ctx.keystore(), options)

  clientCommand(
    cli,
    'trust [did]',
    'tiers and reputation; with --tier and --reason, set a tier (your signed trust/promote)',
  )
    .addOption(new Option('--tier <n>', 'the tier to give (2–4)').argParser(tierOf))
    .option('--reason <text>', 'why (required with --tier)')
    .addOption(new Option('--scope <scope>', 'a principal or a peer mesh').choices(['principal', 'mesh']))
    .action(
      async (
        did: string | undefined,
        options: ClientOptions & { tier?: number; reason?: string; scope?: 'principal' | 'mesh' },
      ) => {
        if (did !== undefined) didArgument(did, 'the did')
        const { key, client: api } = await session(options)
        const scope = options.scope ?? 'principal'
        if (options.tier !== undefined) {
          if (did === undefined) throw new MeshError('MESH_BAD_REQUEST', 'name the did whose tier to set')
          if (options.reason === undefined || options.reason.trim() === '') {
            throw new MeshError('MESH_BAD_REQUEST', '--reason is required with --tier')
          }
          const meshDid = api.meshDid as string
          const ucan = await invocationToken(
            key,
            meshDid,
            {
              can: 'trust/promote',
              with: meshDid,
              nb: { subject: did, tier: options.tier, reason: options.reason },
            },
            await chainProofs(api, key, options.proof),
          )
          const record = await api.call('putTrust', {
            params: { did },
            body: {
              tier: options.tier,
              reason: options.reason,
              ucan,
              ...(options.scope !== undefined ? { scope } : {}),
            },
          })
          out.print(record, trustLine(record))
          return
        }
        if (did !== undefined) {
          const record = await api.call('getTrust', { params: { did }, query: { scope } })
          out.print(record, trustLine(record))
          return
        }
        const all = await api.call('listTrust')
        out.print(
          all,
          [
            'principals:',
            ...(all.principals.length === 0 ? ['  none'] : all.principals.map((r) => `  ${trustLine(r)}`)),
            'peer meshes:',
            ...(all.meshes.length === 0 ? ['  none'] : all.meshes.map((r) => `  ${trustLine(r)}`)),
          ].join('\n'),
        )
      },
    )

  clientCommand(
    cli,
    'delegate <audience> <ability>',
    'delegate a capability of this mesh to a did (a UCAN signed by your key)',
  )
    .option('--agent <id>', 'on one agent of this mesh (agent/invoke)')
    .option('--skill <id>', 'only this skill of the agent (agent/invoke nb.ability)')
    .option('--room <id>', 'on one room of this mesh (room/*)')
    .option('--with <resource>', 'the resource (default: this mesh, or the agent / room given)')
    .addOption(new Option('--ttl <seconds>', 'lifetime').argParser(positiveInt).default(24 * 3600))
    .action(
      async (
        audience: string,
        ability: string,
        options: ClientOptions & {
          agent?: string
          skill?: string
          room?: string
          with?: string
          ttl: number
        },
      ) => {
        didArgument(audience, 'the audience')
        // Re-delegating something held from another mesh (--with and --proof) needs no node;
        // anything else is on this mesh, with its root delegation as the default proof.
        if (options.with !== undefined && (options.proof?.length ?? 0) > 0) {
          const key = await signingKey(ctx.keystore(), options)
          const proofs = await givenProofs(options.proof)
          const nb = options.skill !== undefined ? { ability: options.skill } : undefined
          const capability = { can: ability, with: options.with, ...(nb !== undefined ? { nb } : {}) }
          const delegation = await delegationToken(key, audience, capability, proofs, options.ttl)
          out.print({ ...delegation, issuer: key.did, audience, ...capability }, delegation.token)
          return
        }
        const { key, client: api } = await session(options)
        const meshDid = api.meshDid as string
        const resource =
          options.with ??
          (options.agent !== undefined
            ? agentResourceOf(meshDid, options.agent)
            : options.room !== undefined
              ? roomResourceOf(meshDid, options.room)
              : meshDid)
        const nb = options.skill !== undefined ? { ability: options.skill } : undefined
        const delegation = await delegationToken(
          key,
          audience,
          { can: ability, with: resource, ...(nb !== undefined ? { nb } : {}) },
          await chainProofs(api, key, options.proof),
          options.ttl,
        )
        // revocation people can use (SPEC §9): the mesh records what its principals issue
        const recorded = await api
          .call('recordDelegation', { body: { delegation: delegation.token } })
          .then(() => true)
        out.print(
          {
            ...delegation,
            issuer: key.did,
            audience,
            can: ability,
            with: resource,
            ...(nb ? { nb } : {}),
            recorded,
          },
          delegation.token,
        )
      },
    )

  cli
    .command('invoke <mesh-api> <agent> <skill>')
    .description("invoke a skill of a mesh's agent (agent/invoke, signed by --as, with --proof delegations)")
    .addOption(new Option('--data <dir>', 'data directory (for the default signing key)').default('./.mesh'))
    .option('--as <name>', 'keystore key to sign with (default: the architect)')
    .option('--input <json>', 'the skill’s input, JSON')
    .option('--proof <token>', 'a delegation (token or @file) to embed (repeatable)', collect)
    .option('--credential <jwt>', 'a credential to present (repeatable)', collect)
    .action(
      async (
        target: string,
        agent: string,
        skill: string,
        options: { data: string; as?: string; input?: string; proof?: string[]; credential?: string[] },
      ) => {
        if (!/^https?:\/\//.test(target)) {
          throw new MeshError(
            'MESH_BAD_REQUEST',
            'give the mesh’s HTTP API URL (its manifest’s endpoints.http)',
            {
              target,
            },
          )
        }
        const key = await signingKey(ctx.keystore(), options)
        const api = new HttpClient(target.replace(/\/$/, ''))
        const health = await api.call('health')
        const input = jsonInput(options.input)
        const proofs = await givenProofs(options.proof)
        const ucan = await invocationToken(
          key,
          health.did,
          {
            can: 'agent/invoke',
            with: agentResourceOf(health.did, agent),
            nb: { ability: skill, ...(input !== undefined ? { input } : {}) },
          },
          proofs,
        )
        const res = await api.call('invoke', {
          body: { ucan, ...(options.credential !== undefined ? { credentials: options.credential } : {}) },
        })
        out.print(res, JSON.stringify(res.result, null, 2))
      },
    )
}
