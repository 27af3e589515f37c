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
 * - as a beneficiary: `sent!<relay did>` → the head of its chain with that relay;
 * - as a relay, across restarts (SPEC §10): `cut!<peer id>` → a cut-off, and
 *   `count!<peer id>` → the bytes measured and receipted for it over every start.
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

  /** The relay's cut-offs and counts, kept across restarts. */
  get relayState(): RelayState {
    return new RelayState(this.#db)
  }

  async setSentHead(relay: string, head: ChainHead & { receipts: number; bytes: number }): Promise<void> {
    await this.#db.put(`sent!${relay}`, head)
  }
}

/** A relay's cut-off of one beneficiary, kept across restarts. */
export interface StoredCut {
  code: string
  at: number
}

/** What a relay measured and took receipts for, for one beneficiary, over every start. */
export interface StoredCount {
  measured: number
  receipted: number
}

/** The relay's cut-offs and counts in the ledger sublevel, by beneficiary peer id. */
export class RelayState {
  readonly #db: Sublevel<unknown>

  constructor(db: Sublevel<unknown>) {
    this.#db = db
  }

  cuts(): Promise<Array<[string, StoredCut]>> {
    return this.#entries<StoredCut>('cut!')
  }

  async setCut(peer: string, cut: StoredCut | undefined): Promise<void> {
    if (cut === undefined) await this.#db.del(`cut!${peer}`)
    else await this.#db.put(`cut!${peer}`, cut)
  }

  counts(): Promise<Array<[string, StoredCount]>> {
    return this.#entries<StoredCount>('count!')
  }

  async setCounts(counts: Array<[string, StoredCount]>): Promise<void> {
    if (counts.length > 0)
      await this.#db.batch(
        counts.map(([peer, value]) => ({ type: 'put' as const, key: `count!${peer}`, value })),
      )
  }

  async #entries<T>(prefix: string): Promise<Array<[string, T]>> {
    const out: Array<[string, T]> = []
    for await (const [key, value] of this.#db.iterator({ gt: prefix, lt: `${prefix}\xff` }))
      out.push([key.slice(prefix.length), value as T])
    return out
  }
}

function heldKey(beneficiary: string, seq: number): string {
  return `held!${beneficiary}!${String(seq).padStart(16, '0')}`
}
