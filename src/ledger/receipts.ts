import type { LedgerView, ReceiptView } from '../api/index.ts'
import { receiptSchema } from '../api/index.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import { signCanonical, verifyCanonical } from '../identity/index.ts'
import { lazyValidator } from '../schema.ts'

/**
 * Coordination fees (SPEC §10): receipts a beneficiary signs for the bytes a relay carried
 * for it, and their offline verification.
 *
 * A receipt covers one interval `[from, to)` of the beneficiary's clock (ms): receipt
 * `seq` 1, 2, 3… of one (relay, beneficiary) pair follow each other with no gap and no
 * overlap — n+1's `from` is n's `to`, `to` ≥ `from`. `bytes` and `messages` are what
 * crossed the beneficiary's circuits through the relay in that interval (not cumulative);
 * the ledger's totals are their sums.
 */
export type Receipt = ReceiptView
export type ReceiptContent = Omit<Receipt, 'sig'>

/** Codes a receipt check gives (each a `MESH_…` code of src/errors.ts). */
export type ReceiptProblemCode =
  | 'MESH_BAD_REQUEST'
  | 'MESH_SIGNATURE_MISMATCH'
  | 'MESH_REPLAY'
  | 'MESH_RECEIPT_INVALID'
  | 'MESH_CLOCK_SKEW'

export interface ReceiptProblem {
  beneficiary: string
  seq: number | null
  code: ReceiptProblemCode
  message: string
}

export const isReceipt = lazyValidator<Receipt>(receiptSchema)

export function signReceipt(key: Ed25519KeyPair, content: ReceiptContent): Receipt {
  return { ...content, sig: signCanonical(key, content) }
}

/** Whether `receipt` is signed by its beneficiary. */
export function receiptSigned(receipt: Receipt): boolean {
  const { sig, ...content } = receipt
  return verifyCanonical(receipt.beneficiary, content, sig)
}

/** What a beneficiary's chain stands at: the last receipt's seq and end. */
export interface ChainHead {
  seq: number
  to: number
}

/**
 * Checks `receipt` as the next of a chain standing at `head` (undefined: the first), for
 * the relay `relay`; returns the problem, or undefined when it may be taken.
 */
export function checkNext(
  relay: string,
  receipt: unknown,
  head: ChainHead | undefined,
): ReceiptProblem | undefined {
  const problem = (code: ReceiptProblemCode, message: string, seq: number | null = null): ReceiptProblem => ({
    beneficiary:
      typeof (receipt as Receipt)?.beneficiary === 'string' ? (receipt as Receipt).beneficiary : '',
    seq,
    code,
    message,
  })
  if (!isReceipt(receipt)) return problem('MESH_BAD_REQUEST', 'not a receipt')
  const { seq } = receipt
  if (receipt.relay !== relay)
    return problem('MESH_RECEIPT_INVALID', `the receipt is for relay ${receipt.relay}`, seq)
  if (!receiptSigned(receipt)) return problem('MESH_SIGNATURE_MISMATCH', 'the signature does not verify', seq)
  if (receipt.to < receipt.from)
    return problem('MESH_RECEIPT_INVALID', 'the interval ends before it starts', seq)
  if (head !== undefined && seq <= head.seq)
    return problem('MESH_REPLAY', `seq ${seq} is not after ${head.seq}`, seq)
  if (seq !== (head?.seq ?? 0) + 1)
    return problem('MESH_RECEIPT_INVALID', `seq ${seq} skips after ${head?.seq ?? 0}`, seq)
  if (head !== undefined && receipt.from !== head.to)
    return problem(
      'MESH_RECEIPT_INVALID',
      receipt.from < head.to
        ? 'the interval overlaps the last one'
        : 'the interval leaves a gap after the last one',
      seq,
    )
  return undefined
}

export interface ChainTotals {
  receipts: number
  bytes: number
  messages: number
  lastSeq: number
}

export interface LedgerVerification {
  ok: boolean
  /** Per beneficiary: what its receipts add up to, and whether they all hold. */
  beneficiaries: Array<{ did: string } & ChainTotals & { ok: boolean }>
  problems: ReceiptProblem[]
}

/**
 * Offline verification of a ledger export (`GET /api/ledger?receipts=true`): every
 * receipt's signature, each beneficiary's chain (seq from its first receipt, strictly
 * by one, intervals contiguous with no overlap, all for this relay), and each
 * beneficiary's totals in the summary against the sums of its receipts.
 */
export function verifyLedger(
  ledger: Pick<LedgerView, 'did' | 'beneficiaries' | 'receipts'>,
): LedgerVerification {
  const problems: ReceiptProblem[] = []
  const chains = new Map<string, { head: ChainHead | undefined; totals: ChainTotals; ok: boolean }>()
  const receipts = [...(ledger.receipts ?? [])].sort((a, b) =>
    a.beneficiary === b.beneficiary ? a.seq - b.seq : a.beneficiary < b.beneficiary ? -1 : 1,
  )
  for (const receipt of receipts) {
    const chain = chains.get(receipt.beneficiary) ?? {
      // A ledger may start at any seq (an export of a chain begun elsewhere): its first receipt opens it.
      head: undefined,
      totals: { receipts: 0, bytes: 0, messages: 0, lastSeq: 0 },
      ok: true,
    }
    chains.set(receipt.beneficiary, chain)
    const head = chain.head ?? (receipt.seq > 1 ? { seq: receipt.seq - 1, to: receipt.from } : undefined)
    const problem = checkNext(ledger.did, receipt, head)
    if (problem !== undefined) {
      problems.push(problem)
      chain.ok = false
      if (problem.code === 'MESH_REPLAY' || problem.code === 'MESH_BAD_REQUEST') continue
    }
    chain.head = { seq: receipt.seq, to: receipt.to }
    chain.totals.receipts++
    chain.totals.bytes += receipt.bytes
    chain.totals.messages += receipt.messages
    chain.totals.lastSeq = receipt.seq
  }
  for (const summary of ledger.beneficiaries) {
    const chain = chains.get(summary.did)
    const totals = chain?.totals ?? { receipts: 0, bytes: 0, messages: 0, lastSeq: 0 }
    const mismatch = (['receipts', 'bytes', 'messages', 'lastSeq'] as const).filter(
      (field) =>
        totals[field] !==
        {
          receipts: summary.receipts,
          bytes: summary.receiptedBytes,
          messages: summary.receiptedMessages,
          lastSeq: summary.lastSeq,
        }[field],
    )
    if (mismatch.length > 0) {
      problems.push({
        beneficiary: summary.did,
        seq: null,
        code: 'MESH_RECEIPT_INVALID',
        message: `the totals (${mismatch.join(', ')}) are not the sums of the receipts`,
      })
      if (chain !== undefined) chain.ok = false
      else chains.set(summary.did, { head: undefined, totals, ok: false })
    }
  }
  const beneficiaries = [...chains].map(([did, chain]) => ({ did, ...chain.totals, ok: chain.ok }))
  return { ok: problems.length === 0, beneficiaries, problems }
}
