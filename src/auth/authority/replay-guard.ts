import type { MeshStore, StoreOperation, Sublevel } from '../../store/index.ts'

/**
 * Invocations already used, by CID, persisted in the `ucan-seen` sublevel until they
 * could no longer pass the time check (exp + 2 × skew + a margin), so a replay is
 * refused also after a restart. Layout (keys carry a version segment):
 *
 * ```
 * 1/cid/<cid>                      → forgetAt (ms)
 * 1/exp/<forgetAt, 15 digits>/<cid> → 0            (pruning is a range scan)
 * ```
 *
 * The live set is mirrored in memory (loaded by `open`), so `claim` is synchronous: two
 * copies of one invocation arriving at once cannot both pass.
 */
export class ReplayGuard {
  readonly #store: MeshStore
  readonly #sub: Sublevel<number>
  readonly #known = new Map<string, number>()
  #opened = false

  constructor(init: { store: MeshStore }) {
    this.#store = init.store
    this.#sub = init.store.sublevel<number>('ucan-seen')
  }

  async open(): Promise<void> {
    if (this.#opened) return
    for await (const [key, forgetAt] of this.#sub.iterator({ gte: '1/cid/', lt: '1/cid/~' })) {
      this.#known.set(key.slice('1/cid/'.length), forgetAt)
    }
    this.#opened = true
  }

  /** Claims `cid` in memory; false when it was used or claimed already. */
  claim(cid: string, forgetAt: number): boolean {
    if (!this.#opened) throw new Error('ReplayGuard.open() was not called')
    if (this.#known.has(cid)) return false
    this.#known.set(cid, forgetAt)
    return true
  }

  /** Takes back a claim whose effect was not carried out. */
  release(cid: string): void {
    this.#known.delete(cid)
  }

  operations(cid: string, forgetAt: number): StoreOperation[] {
    return [
      { type: 'put', sublevel: this.#sub, key: `1/cid/${cid}`, value: forgetAt },
      {
        type: 'put',
        sublevel: this.#sub,
        key: `1/exp/${String(forgetAt).padStart(15, '0')}/${cid}`,
        value: 0,
      },
    ] as StoreOperation[]
  }

  async commit(cid: string, forgetAt: number, operations: StoreOperation[] = []): Promise<void> {
    await this.#store.batch([...operations, ...this.operations(cid, forgetAt)])
  }

  /** Forgets invocations whose retention ended before `now` (ms); returns how many. */
  async prune(now: number): Promise<number> {
    const keys: string[] = []
    for await (const key of this.#sub.keys({ gte: '1/exp/', lt: `1/exp/${String(now).padStart(15, '0')}` })) {
      keys.push(key)
    }
    const ops: StoreOperation[] = []
    for (const key of keys) {
      const cid = key.slice(key.indexOf('/', '1/exp/'.length) + 1)
      this.#known.delete(cid)
      ops.push({ type: 'del', sublevel: this.#sub, key } as StoreOperation)
      ops.push({ type: 'del', sublevel: this.#sub, key: `1/cid/${cid}` } as StoreOperation)
    }
    if (ops.length > 0) await this.#store.batch(ops)
    return keys.length
  }
}
