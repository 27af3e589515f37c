/**
 * Keeps a flood of refusals from filling the logs: at most one record per key (a peer,
 * or a peer and a reason) per interval; the ones in between are counted and the count
 * rides on the next record (`suppressedSinceLast`). Memory is bounded: past `maxKeys`
 * keys the table starts over (a flood of distinct keys then records a little more, it
 * never grows without end).
 */
export interface RefusalThrottleInit {
  /** One record per key per this many ms; default 1 000. Read at each call. */
  intervalMs?: number | (() => number)
  /** Keys remembered before the table is cleared; default 10 000. */
  maxKeys?: number
  now?: () => number
}

export class RefusalThrottle {
  readonly #last = new Map<string, { at: number; suppressed: number }>()
  readonly #interval: () => number
  readonly #maxKeys: number
  readonly #now: () => number

  constructor(init: RefusalThrottleInit = {}) {
    const every = init.intervalMs ?? 1000
    this.#interval = typeof every === 'function' ? every : () => every
    this.#maxKeys = init.maxKeys ?? 10_000
    this.#now = init.now ?? Date.now
  }

  /**
   * Whether a refusal under `key` is recorded now: undefined when it falls inside the
   * interval (it is counted); otherwise how many were held back since the last record.
   */
  admit(key: string): { suppressedSinceLast: number } | undefined {
    const now = this.#now()
    const last = this.#last.get(key)
    if (last !== undefined && now - last.at < this.#interval()) {
      last.suppressed++
      return undefined
    }
    if (this.#last.size > this.#maxKeys) this.#last.clear()
    this.#last.set(key, { at: now, suppressed: 0 })
    return { suppressedSinceLast: last?.suppressed ?? 0 }
  }
}
