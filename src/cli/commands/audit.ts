/** `mesh audit` (the log, its verification and checkpoints) and `mesh rejected` (refusals). */
import { readFile } from 'node:fs/promises'
import { type Command, Option } from 'commander'
import type { AuditReport as AuditVerifyReport } from '../../api/index.ts'
// accountability across meshes (SPEC §11): offline verification of equivocation proofs
import { verifyEquivocation } from '../../audit/index.ts'
import { MeshError } from '../../errors.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'
import { positiveInt, readJsonFile } from '../options.ts'

type AuditOptions = ClientOptions & {
  verify?: boolean
  checkpoint?: string | true
  action?: string
  limit: number
  oldest?: boolean
}

/** A saved checkpoint given as its JSON text or as a file holding it; returned as compact JSON. */
async function readCheckpoint(value: string): Promise<string> {
  let text = value
  if (!value.trimStart().startsWith('{')) {
    try {
      text = await readFile(value, 'utf8')
    } catch (err) {
      throw new MeshError(
        'MESH_BAD_REQUEST',
        `cannot read the checkpoint file ${value}: ${(err as Error).message}`,
      )
    }
  }
  try {
    return JSON.stringify(JSON.parse(text))
  } catch {
    throw new MeshError('MESH_BAD_REQUEST', 'the checkpoint is not JSON')
  }
}

function verifyText(report: AuditVerifyReport): string {
  return report.ok
    ? `audit log ok: ${report.count} rows, head ${report.head?.seq ?? 0} ${report.head?.hash ?? ''}`
    : [
        `audit log NOT ok (${report.count} rows):`,
        ...report.problems.map((p) => `  #${p.seq} ${p.kind}: ${p.message}`),
      ].join('\n')
}

export function registerAuditCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx

  const audit = clientCommand(cli, 'audit', 'show the audit log, or verify its hash chain and signatures')
  audit
    .option('--verify', 'verify the whole log')
    .option(
      '--checkpoint [file-or-json]',
      'alone: print the log’s current signed checkpoint (JSON, to keep off the node); ' +
        'with --verify: also check that the log extends this saved checkpoint',
    )
    .option('--action <prefix>', 'only rows whose action starts with this')
    .addOption(new Option('--limit <n>', 'rows (1–500)').argParser(positiveInt).default(100))
    .option('--oldest', 'from the first row on (default: the newest first)')
    .action(async (options: AuditOptions) => {
      const { client: api } = await humanSession(ctx.keystore(), options)
      if (options.checkpoint === true && options.verify !== true) {
        // Always JSON: it is meant to be saved (`mesh audit --checkpoint > checkpoint.json`).
        out.printJson(await api.call('auditCheckpoint'))
        return
      }
      if (options.verify === true) {
        if (options.checkpoint === true) {
          throw new MeshError('MESH_BAD_REQUEST', '--verify --checkpoint wants a checkpoint file or its JSON')
        }
        const saved = options.checkpoint === undefined ? undefined : await readCheckpoint(options.checkpoint)
        const report = await api.call(
          'verifyAudit',
          saved === undefined ? {} : { query: { checkpoint: Buffer.from(saved).toString('base64url') } },
        )
        if (report.ok) out.print(report, verifyText(report))
        else out.printFailed(report, verifyText(report))
        return
      }
      // Newest first, as a person reads a log (issue 14); --oldest from the start.
      const page = await api.call('listAudit', {
        query: {
          limit: String(options.limit),
          action: options.action,
          ...(options.oldest ? {} : { order: 'newest' as const }),
        },
      })
      const name = (did: string | null) => (did === null ? '' : (page.names?.[did] ?? did))
      out.print(
        page,
        page.entries
          .map((e) => `${String(e.seq).padStart(5)} ${e.ts} ${e.action} ${name(e.subject)} ${name(e.actor)}`)
          .join('\n') || 'empty audit log',
      )
    })

  // accountability across meshes (SPEC §11). The group's options (--data, --api, --as)
  // are parsed by `audit` itself, so a subcommand reads them with optsWithGlobals.
  audit
    .command('head')
    .description('the log’s signed tree head: rows, RFC 6962 Merkle root, the key that signed')
    .action(async (_options: unknown, command: Command) => {
      const { client: api } = await humanSession(ctx.keystore(), command.optsWithGlobals<AuditOptions>())
      const head = await api.call('auditTreeHead')
      out.print(
        head,
        [
          `mesh  ${head.mesh}`,
          `size  ${head.size}`,
          `root  ${head.root}`,
          `ts    ${head.ts}`,
          `key   ${head.key}`,
        ].join('\n'),
      )
    })

  audit
    .command('proof <did>')
    .description('the equivocation proof of a mesh caught signing two logs (JSON, to save and check offline)')
    .action(async (did: string, _options: unknown, command: Command) => {
      const { client: api } = await humanSession(ctx.keystore(), command.optsWithGlobals<AuditOptions>())
      const record = await api.call('getDefection', { params: { did } })
      // Always JSON: it is meant to be saved (`mesh audit proof <did> > proof.json`).
      out.printJson(record.proof)
    })

  audit
    .command('check <file>')
    .description('verify an equivocation proof offline (no node needed): exit 0 when it holds')
    .action(async (file: string) => {
      const proof = verifyEquivocation(await readJsonFile(file))
      const { older, newer } = proof
      out.print(
        { ok: true, mesh: proof.mesh, older, newer },
        [
          `equivocation proof holds: ${proof.mesh} signed two logs no consistency proof joins`,
          `  head of ${older.size} rows, root ${older.root} (${older.ts})`,
          `  head of ${newer.size} rows, root ${newer.root} (${newer.ts})`,
        ].join('\n'),
      )
    })

  clientCommand(cli, 'rejected', 'refused federation messages and requests, newest first')
    .option('--code <code>', 'only this MESH_… code')
    .action(async (options: ClientOptions & { code?: string }) => {
      const { client: api } = await humanSession(ctx.keystore(), options)
      const page = await api.call('listRejected', { query: { code: options.code || undefined } })
      out.print(
        page,
        page.entries
          .map((e) => `${e.at} ${e.code.padEnd(24)} ${e.kind.padEnd(18)} ${e.peer ?? '-'} ${e.reason}`)
          .join('\n') || 'nothing refused',
      )
    })
}
