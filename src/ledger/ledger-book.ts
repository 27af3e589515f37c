import type { Sublevel } from '../store/index.ts'
import type { ChainHead, Receipt } from './receipts.ts'

/** What a relay holds of one beneficiary's receipts (all time). */
export interface BeneficiarySummary {
  did: string
  receipts: number
  bytes: number
  messages: number
  lastSeq: number
  lastTo: number
}

/**
 * The ledger in the store's `ledger` sublevel (coordination fees, SPEC §10):
 *
 * - as a relay: `held!<beneficiary>!<seq, 16 digits>` → the receipt, and
 *   `sum!<beneficiary>` → its summary, written together;
 * - as a beneficiary: `sent!<relay did>` → the head of its chain with that relay.
 */
export class LedgerBook {
  readonly #db: Sublevel<unknown>
  /** One write at a time per beneficiary: a chain is extended in order. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor(db: Sublevel<unknown>) {
    this.#db = db
  }

  async summary(beneficiary: string): Promise<BeneficiarySummary | undefined> {
    return (await this.#db.get(`sum!${beneficiary}`)) as BeneficiarySummary | undefined
  }

  async summaries(): Promise<BeneficiarySummary[]> {
    const out: BeneficiarySummary[] = []
    for await (const value of this.#db.values({ gt: 'sum!', lt: 'sum!\xff' }))
      out.push(value as BeneficiarySummary)
    return out
  }

  /** The receipt held at `seq`, if any. */
  async receipt(beneficiary: string, seq: number): Promise<Receipt | undefined> {
    return (await this.#db.get(heldKey(beneficiary, seq))) as Receipt | undefined
  }

  /** Every receipt held (of one beneficiary, or of all), in chain order. */
  async receipts(beneficiary?: string): Promise<Receipt[]> {
    const prefix = beneficiary === undefined ? 'held!' : `held!${beneficiary}!`
    const out: Receipt[] = []
    for await (const value of this.#db.values({ gt: prefix, lt: `${prefix}\xff` })) out.push(value as Receipt)
    return out
  }

  /**
   * Runs `check` against the chain's head and, when it passes, takes the receipt: both
   * under the beneficiary's turn, so two receipts racing cannot both extend the chain.
   */
  async take<T>(
    receipt: Receipt,
    check: (head: ChainHead | undefined, summary: BeneficiarySummary | undefined) => Promise<T> | T,
  ): Promise<{ taken: boolean; result: T; summary: BeneficiarySummary | undefined }> {
    const run = async () => {
      const summary = await this.summary(receipt.beneficiary)
      const head = summary === undefined ? undefined : { seq: summary.lastSeq, to: summary.lastTo }
      const result = await check(head, summary)
      if (result !== undefined) return { taken: false, result, summary }
      const next: BeneficiarySummary = {
        did: receipt.beneficiary,
        receipts: (summary?.receipts ?? 0) + 1,
        bytes: (summary?.bytes ?? 0) + receipt.bytes,
        messages: (summary?.messages ?? 0) + receipt.messages,
        lastSeq: receipt.seq,
        lastTo: receipt.to,
      }
      await this.#db.batch([
        { type: 'put', key: heldKey(receipt.beneficiary, receipt.seq), value: receipt },
        { type: 'put', key: `sum!${receipt.beneficiary}`, value: next },
      ])
      return { taken: true, result, summary: next }
    }
    const turn = this.#queue.then(run, run)
    this.#queue = turn.catch(() => undefined)
    return turn
  }

  /** The summaries and every receipt, read between two takes (so that they agree). */
  async snapshot(): Promise<{ summaries: BeneficiarySummary[]; receipts: Receipt[] }> {
    const run = async () => ({ summaries: await this.summaries(), receipts: await this.receipts() })
    const turn = this.#queue.then(run, run)
    this.#queue = turn.catch(() => undefined)
    return turn
  }

  /** The head of this mesh's chain with `relay` (a did), as a beneficiary. */
  async sentHead(relay: string): Promise<(ChainHead & { receipts: number; bytes: number }) | undefined> {
    return (await this.#db.get(`sent!${relay}`)) as
      | (ChainHead & { receipts: number; bytes: number })
      | undefined
  }

  async setSentHead(relay: string, head: ChainHead & { receipts: number; bytes: number }): Promise<void> {
    await this.#db.put(`sent!${relay}`, head)
  }
}

function heldKey(beneficiary: string, seq: number): string {
  return `held!${beneficiary}!${String(seq).padStart(16, '0')}`
}
