/** `mesh ledger` — coordination fees (SPEC §10): the relay's ledger of receipts, and its offline check. */
import type { Command } from 'commander'
import type { LedgerView } from '../../api/index.ts'
import { MeshError } from '../../errors.ts'
import { type LedgerVerification, verifyLedger } from '../../ledger/index.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'
import { readJsonFile } from '../options.ts'

type LedgerOptions = ClientOptions & { verify?: boolean; file?: string; export?: boolean }

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`
}

function ledgerText(ledger: LedgerView): string {
  const lines = [
    `mesh ${ledger.did}  relaying: ${ledger.relaying ? 'yes' : 'no'}  free allowance: ${mib(ledger.freeBytes)}  signs receipts: ${ledger.signing ? 'yes' : 'no'}`,
  ]
  if (ledger.beneficiaries.length > 0) lines.push('beneficiaries (traffic this mesh relayed):')
  for (const b of ledger.beneficiaries) {
    lines.push(
      `  ${b.did}  measured ${mib(b.measuredBytes)}  receipted ${mib(b.receiptedBytes)} in ${b.receipts} receipts (seq ${b.lastSeq})` +
        `  unreceipted ${mib(b.unreceiptedBytes)}  refused ${b.refused}  ${b.verified ? 'verified' : 'NOT verified'}` +
        (b.cutOff === null ? '' : `  CUT OFF ${b.cutOff.code} at ${b.cutOff.at}`),
    )
  }
  if (ledger.relays.length > 0) lines.push('relays (that carried this mesh’s traffic):')
  for (const r of ledger.relays) {
    lines.push(
      `  ${r.did}  measured ${mib(r.measuredBytes)}  receipted ${mib(r.receiptedBytes)} in ${r.receipts} receipts (seq ${r.lastSeq})` +
        (r.lastError === null ? '' : `  last refusal ${r.lastError}`),
    )
  }
  if (ledger.beneficiaries.length === 0 && ledger.relays.length === 0) lines.push('no relayed traffic')
  return lines.join('\n')
}

function verifyText(report: LedgerVerification): string {
  const rows = report.beneficiaries.map(
    (b) =>
      `  ${b.did}  ${b.receipts} receipts, ${b.bytes} bytes, ${b.messages} messages  ${b.ok ? 'ok' : 'NOT ok'}`,
  )
  return report.ok
    ? [`ledger ok: every signature, seq and interval holds, and the totals are the sums`, ...rows].join('\n')
    : [
        'ledger NOT ok:',
        ...report.problems.map((p) => `  ${p.beneficiary} #${p.seq ?? '-'} ${p.code}: ${p.message}`),
        ...rows,
      ].join('\n')
}

async function readExport(file: string): Promise<LedgerView> {
  const value = await readJsonFile(file)
  const ledger = value as LedgerView
  if (
    typeof ledger?.did !== 'string' ||
    !Array.isArray(ledger.beneficiaries) ||
    !Array.isArray(ledger.receipts)
  )
    throw new MeshError('MESH_BAD_REQUEST', `${file} is not a ledger export (mesh ledger --export)`)
  return ledger
}

export function registerLedgerCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx
  const ledger = clientCommand(
    cli,
    'ledger',
    'relay receipts: what relays carried, for whom, and what was signed for it',
  )
  ledger
    .option('--verify', 'verify every receipt offline: signatures, seq, contiguity, totals (exit 1 if not)')
    .option(
      '--file <exported.json>',
      'with --verify: check this export instead of the node’s ledger (no node needed)',
    )
    .option('--export', 'print the whole ledger with every receipt, as JSON (to save and verify offline)')
    .action(async (options: LedgerOptions) => {
      if (options.file !== undefined) {
        const report = verifyLedger(await readExport(options.file))
        if (report.ok) out.print(report, verifyText(report))
        else out.printFailed(report, verifyText(report))
        return
      }
      const { client: api } = await humanSession(ctx.keystore(), options)
      const wantReceipts = options.verify === true || options.export === true
      const ledger = await api.call('ledger', { query: wantReceipts ? { receipts: 'true' } : {} })
      if (options.export === true) {
        out.printJson(ledger)
        return
      }
      if (options.verify === true) {
        const report = verifyLedger(ledger)
        if (report.ok) out.print(report, verifyText(report))
        else out.printFailed(report, verifyText(report))
        return
      }
      out.print(ledger, ledgerText(ledger))
    })
  // relay ledger forgive (SPEC §10)
  clientCommand(
    ledger,
    'forgive <did>',
    'as a relay (architect): serve a cut-off beneficiary again, its debt forgiven',
  ).action(async (did: string, _options: ClientOptions, command: Command) => {
    // `ledger` has the same client options and takes them wherever they stand: merge both
    const { client: api } = await humanSession(ctx.keystore(), command.optsWithGlobals<ClientOptions>())
    const res = await api.call('ledgerForgive', { body: { did } })
    out.print(res, `${res.did} forgiven${res.wasCutOff ? ': cut-off lifted' : ' (it was not cut off)'}`)
  })
}
