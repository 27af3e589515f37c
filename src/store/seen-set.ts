import type { MeshStore, StoreOperation, Sublevel } from './mesh-store.ts'

/**
 * A persisted set of "already used" keys (envelope ids, act nonces) in the
 * `envelopes` sublevel, each remembered until its `forgetAt` time. Layout, per
 * namespace `ns` (store keys carry a version segment):
 *
 * ```
 * <ns>/1/key/<key>                        → forgetAt (ms epoch)
 * <ns>/1/exp/<forgetAt, 15 digits>/<key>  → 0
 * ```
 *
 * The first lists the members; the second makes pruning a range scan over the
 * oldest. Both are written by the caller's atomic batch, in the same batch as the
 * effect of the message, so "applied" and "remembered" can never be separated by a
 * crash.
 *
 * The whole live set is mirrored in memory (loaded on first use): a point read per
 * message would cost a fifth of the verification budget, and the set is small — it
 * holds only what arrived within the retention window, and prune trims both copies.
 * A key enters the mirror when it is claimed, before its batch is written, so two
 * copies of one message arriving at once cannot both pass; `release` takes back a
 * claim whose effect was not applied. A claim never released nor committed blocks
 * that key until the next restart: the failure leans towards refusing, not applying
 * twice.
 *
 * One SeenSet per store and namespace: two would not see each other's claims.
 */
export class SeenSet {
  readonly #store: MeshStore
  readonly #sub: Sublevel<number>
  readonly #prefix: string
  readonly #known = new Map<string, number>()
  #loading: Promise<void> | undefined

  constructor(init: { store: MeshStore; namespace: string }) {
    this.#store = init.store
    this.#sub = init.store.sublevel<number>('envelopes')
    this.#prefix = `${init.namespace}/1/`
  }

  /**
   * Claims `key` until `forgetAt`; false when it was already used or claimed. The
   * check and the claim happen without an await between them.
   */
  async claim(key: string, forgetAt: number): Promise<boolean> {
    await this.#load()
    if (this.#known.has(key)) return false
    this.#known.set(key, forgetAt)
    return true
  }

  /** Takes back a claim whose batch was not (or could not be) written; a stored key stays. */
  async release(key: string): Promise<void> {
    if (!(await this.has(key))) this.#known.delete(key)
  }

  /** Whether `key` is stored (claims not counted). */
  async has(key: string): Promise<boolean> {
    return (await this.#sub.get(`${this.#prefix}key/${key}`)) !== undefined
  }

  /** The batch operations that remember `key` until `forgetAt`. */
  operations(key: string, forgetAt: number): StoreOperation[] {
    return [
      { type: 'put', sublevel: this.#sub, key: `${this.#prefix}key/${key}`, value: forgetAt },
      { type: 'put', sublevel: this.#sub, key: `${this.#prefix}exp/${pad(forgetAt)}/${key}`, value: 0 },
    ] as StoreOperation[]
  }

  #load(): Promise<void> {
    if (this.#loading === undefined) {
      const loading = (async () => {
        const keyPrefix = `${this.#prefix}key/`
        for await (const [key, forgetAt] of this.#sub.iterator({ gte: keyPrefix, lt: `${keyPrefix}~` })) {
          this.#known.set(key.slice(keyPrefix.length), forgetAt)
        }
      })()
      // A failed load is reported to this caller and retried by the next one.
      loading.catch(() => {
        if (this.#loading === loading) this.#loading = undefined
      })
      this.#loading = loading
    }
    return this.#loading
  }

  /** Forgets every key whose `forgetAt` is before `now`; returns how many. */
  async prune(now: number): Promise<number> {
    await this.#load()
    for (const [key, forgetAt] of this.#known) if (forgetAt < now) this.#known.delete(key)
    const expPrefix = `${this.#prefix}exp/`
    let removed = 0
    for (;;) {
      const expKeys: string[] = []
      for await (const key of this.#sub.keys({ gte: expPrefix, lt: expPrefix + pad(now), limit: 1000 })) {
        expKeys.push(key)
      }
      if (expKeys.length === 0) return removed
      const memberKeys = expKeys.map(
        (k) => `${this.#prefix}key/${k.slice(k.indexOf('/', expPrefix.length) + 1)}`,
      )
      // Only a member whose own time has passed is forgotten, whatever its index entry says.
      const forgetAts = await this.#sub.getMany(memberKeys)
      const ops: StoreOperation[] = expKeys.map(
        (key) => ({ type: 'del', sublevel: this.#sub, key }) as StoreOperation,
      )
      memberKeys.forEach((key, i) => {
        const at = forgetAts[i]
        if (at !== undefined && at < now)
          ops.push({ type: 'del', sublevel: this.#sub, key } as StoreOperation)
      })
      await this.#store.batch(ops)
      removed += expKeys.length
    }
  }
}

function pad(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(15, '0')
}
