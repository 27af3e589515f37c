/** `mesh revoke`, `mesh delegations`: revocation people can use (SPEC §9). */
import type { Command } from 'commander'
import { CID } from 'multiformats/cid'
import type { DelegationList, IssuedDelegationView, RevocationView } from '../../api/index.ts'
import { delegationFacts } from '../../auth/index.ts'
import { MeshError } from '../../errors.ts'
import { chainProofs, invocationToken, readToken } from '../chains.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'

/** A CIDv1 in base32 (what `mesh delegate` prints), not a token. */
const CID_TEXT = /^b[a-z2-7]{20,120}$/

function revocationLine(r: RevocationView): string {
  return `${r.at}  ${r.cid}  by ${r.by}${r.mesh !== undefined ? `  (${r.mesh})` : ''}${r.reason ? `  “${r.reason}”` : ''}`
}

function delegationLine(d: IssuedDelegationView): string {
  const caps = d.capabilities.map((c) => `${c.can} ${c.with}`).join(', ')
  const exp = d.exp === null ? 'no expiry' : `until ${new Date(d.exp * 1000).toISOString()}`
  const state = d.revoked === null ? 'live' : `revoked ${d.revoked.at}`
  return `${d.cid}  ${d.issuer} → ${d.audience}  ${caps}  ${exp}  ${state}`
}

export function registerRevocationCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx
  const session = (options: ClientOptions) => humanSession(ctx.keystore(), options)

  clientCommand(
    cli,
    'revoke <cid|token>',
    'revoke a delegation by its CID, or give its token (or @file) when this mesh has not recorded it (your signed ucan/revoke)',
  )
    .option('--reason <text>', 'why')
    .action(async (target: string, options: ClientOptions & { reason?: string }) => {
      let cid = target.trim()
      let delegation: string | undefined
      if (!CID_TEXT.test(cid)) {
        delegation = await readToken(target)
        cid = delegationFacts(delegation).cid
      }
      let link: CID
      try {
        link = CID.parse(cid)
      } catch {
        throw new MeshError('MESH_BAD_REQUEST', 'not a delegation CID', { cid })
      }
      const s = await session(options)
      const meshDid = s.client.meshDid as string
      const ucan = await invocationToken(
        s.key,
        meshDid,
        {
          can: 'ucan/revoke',
          with: meshDid,
          nb: { ucan: link, ...(options.reason !== undefined ? { reason: options.reason } : {}) },
        },
        await chainProofs(s.client, s.key, options.proof),
      )
      const res = await s.client.call('revoke', {
        body: { cid, ucan, ...(delegation !== undefined ? { delegation } : {}) },
      })
      out.print(
        res,
        `revoked ${res.revocation.cid}${res.announcedTo.length > 0 ? `; announced to ${res.announcedTo.join(', ')}` : ' (here only)'}`,
      )
    })

  clientCommand(
    cli,
    'delegations',
    "the delegations this mesh's principals issued, and every revocation held here; --record TOKEN records one",
    { proof: false },
  )
    .option('--record <token>', 'record a delegation you issued (token or @file)')
    .action(async (options: ClientOptions & { record?: string }) => {
      const { client } = await session(options)
      if (options.record !== undefined) {
        const res = await client.call('recordDelegation', {
          body: { delegation: await readToken(options.record) },
        })
        out.print(res, `recorded ${delegationLine(res)}`)
        return
      }
      const res: DelegationList = await client.call('listDelegations')
      out.print(
        res,
        [
          'delegations:',
          ...(res.delegations.length === 0
            ? ['  none']
            : res.delegations.map((d) => `  ${delegationLine(d)}`)),
          'revocations:',
          ...(res.revocations.length === 0
            ? ['  none']
            : res.revocations.map((r) => `  ${revocationLine(r)}`)),
        ].join('\n'),
      )
    })
}
