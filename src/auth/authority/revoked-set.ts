import type { MeshStore, StoreOperation, Sublevel, SublevelName } from '../../store/index.ts'

export interface RevokedSetInit<T> {
  store: MeshStore
  /** The sublevel the records live in. */
  sublevel: SublevelName
  /** Key prefix inside the sublevel (`<prefix>/<id>`). */
  prefix: string
  /** A record's id: what `isRevoked` is asked with. */
  idOf: (record: T) => string
}

/**
 * Revoked things, by id, in one sublevel, mirrored in memory so a verifier asks
 * synchronously. Kept forever: a revoked delegation or credential may be presented
 * until it expires, and each costs one small row. Writes go with the caller's batch:
 * `operations` to store, then `applied` once they are written.
 */
export class RevokedSet<T> {
  readonly #sub: Sublevel<T>
  readonly #prefix: string
  readonly #idOf: (record: T) => string
  readonly #revoked = new Map<string, T>()
  #opened = false

  constructor(init: RevokedSetInit<T>) {
    this.#sub = init.store.sublevel<T>(init.sublevel)
    this.#prefix = init.prefix
    this.#idOf = init.idOf
  }

  async open(): Promise<void> {
    if (this.#opened) return
    const range = { gte: `${this.#prefix}/`, lt: `${this.#prefix}/~` }
    for await (const value of this.#sub.values(range)) this.#revoked.set(this.#idOf(value), value)
    this.#opened = true
  }

  isRevoked(id: string): boolean {
    return this.#revoked.has(id)
  }

  get(id: string): T | undefined {
    return this.#revoked.get(id)
  }

  list(): T[] {
    return [...this.#revoked.values()]
  }

  /** The operations that store `records`; call `applied` once they are written. */
  operations(records: T[]): StoreOperation[] {
    return records.map(
      (r) =>
        ({
          type: 'put',
          sublevel: this.#sub,
          key: `${this.#prefix}/${this.#idOf(r)}`,
          value: r,
        }) as StoreOperation,
    )
  }

  applied(records: T[]): void {
    for (const r of records) this.#revoked.set(this.#idOf(r), r)
  }
}
