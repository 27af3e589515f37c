/** Ledger: coordination fees (SPEC §10) — relay receipts, the ledger a relay keeps, their offline check. */
export { type BeneficiarySummary, LedgerBook } from './ledger-book.ts'
export {
  type ChainHead,
  type ChainTotals,
  checkNext,
  isReceipt,
  type LedgerVerification,
  type Receipt,
  type ReceiptContent,
  type ReceiptProblem,
  receiptSigned,
  signReceipt,
  verifyLedger,
} from './receipts.ts'
export {
  MAX_RECEIPT_MESSAGE_BYTES,
  MESH_RECEIPTS_PROTOCOL,
  RELAY_FEES_DEFAULTS,
  RelayFees,
  type RelayFeesComponents,
  type RelayFeesInit,
} from './relay-fees.ts'
