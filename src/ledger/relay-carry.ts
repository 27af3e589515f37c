import type { RelayMeter } from '../p2p/index.ts'
import type { RelayState, StoredCount } from './ledger-book.ts'

/**
 * What a relay carries across its restarts (coordination fees, SPEC §10): its cut-offs,
 * and for each beneficiary the bytes measured and receipted over every start. The host's
 * RelayMeter and the receipts taken count since this host started; `total` adds what the
 * starts before counted, so a restart forgives no debt and a receipt for bytes carried
 * before it is not taken for an inflated one. Kept in the ledger sublevel (`RelayState`).
 */
export class RelayCarry {
  readonly #state: RelayState
  /** By beneficiary peer id: what the starts before this host counted. */
  readonly #base = new Map<string, StoredCount>()
  /** By beneficiary peer id: the totals last written, so that only changes are written. */
  readonly #written = new Map<string, string>()

  constructor(state: RelayState) {
    this.#state = state
  }

  /** Cuts off again the beneficiaries cut off before, and takes the counts of the starts before. */
  async load(meter: RelayMeter, current: (peer: string) => StoredCount): Promise<void> {
    this.#base.clear()
    for (const [peer, cut] of await this.#state.cuts()) meter.cut(peer, cut.code, cut.at)
    for (const [peer, stored] of await this.#state.counts()) {
      const now = current(peer)
      this.#base.set(peer, {
        measured: stored.measured - now.measured,
        receipted: stored.receipted - now.receipted,
      })
      this.#written.set(peer, JSON.stringify(stored))
    }
  }

  /** Beneficiaries counted by the starts before. */
  peers(): string[] {
    return [...this.#base.keys()]
  }

  total(peer: string, current: StoredCount): StoredCount {
    const base = this.#base.get(peer)
    return {
      measured: (base?.measured ?? 0) + current.measured,
      receipted: (base?.receipted ?? 0) + current.receipted,
    }
  }

  /** Writes the totals of `peers` that changed since last written. */
  async save(peers: Iterable<string>, current: (peer: string) => StoredCount): Promise<void> {
    const changed: Array<[string, StoredCount]> = []
    for (const peer of new Set([...peers, ...this.#base.keys()])) {
      const total = this.total(peer, current(peer))
      const json = JSON.stringify(total)
      if (this.#written.get(peer) === json) continue
      this.#written.set(peer, json)
      changed.push([peer, total])
    }
    await this.#state.setCounts(changed)
  }

  cut(peer: string, code: string, at: number): Promise<void> {
    return this.#state.setCut(peer, { code, at })
  }

  /** Forgives `peer` its debt (all it was measured counts as receipted) and its cut-off. */
  async forgive(peer: string, current: StoredCount): Promise<void> {
    const total = this.total(peer, current)
    this.#base.set(peer, {
      measured: total.measured - current.measured,
      receipted: total.measured - current.receipted,
    })
    await this.#state.setCut(peer, undefined)
    await this.save([peer], () => current)
  }
}
