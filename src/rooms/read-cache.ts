/**
 * Values read once from the store and kept in memory (issue 15: a post no longer reads
 * its room's record from LevelDB). Only for values whose every write goes through the
 * owner of the cache, which `set`s them; at most `max` kept (then all are dropped).
 */
export class ReadCache<V> {
  readonly #values = new Map<string, V>()
  readonly #read: (key: string) => Promise<V | undefined>
  readonly #max: number

  constructor(read: (key: string) => Promise<V | undefined>, max = 10_000) {
    this.#read = read
    this.#max = max
  }

  async get(key: string): Promise<V | undefined> {
    const cached = this.#values.get(key)
    if (cached !== undefined) return cached
    const value = await this.#read(key)
    if (value !== undefined) this.set(key, value)
    return value
  }

  set(key: string, value: V): void {
    if (this.#values.size >= this.#max) this.#values.clear()
    this.#values.set(key, value)
  }
}
