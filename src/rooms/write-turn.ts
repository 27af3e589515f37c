import type { StoreOperation } from '../store/index.ts'
import type { Entry, SealedMapName } from './room-entries.ts'
import { MAX_BATCH_ENTRIES } from './seal-batch.ts'
import type { NewEntry } from './validate-update.ts'

/**
 * Issue 15 (batch15): the node's own writes of one event-loop turn (`Room.write`), applied
 * together at its end (`setImmediate`: HTTP posts arrive in separate I/O callbacks, a
 * microtask would see one at a time). In call order, each write's new entries are
 * checked against the room plus the turn's earlier writes; a refused write rejects its
 * own caller only. The others go in one transaction (another one past the caps: at most
 * MAX_BATCH_ENTRIES entries, ≈ BATCH_BYTES), sealed under one batch record
 * (seal-batch.ts); every caller resolves once its transaction is durable.
 */

export type Write = Array<{ map: SealedMapName; key: string; value: Entry }>

/** What a turn needs from its room. */
export interface TurnHost {
  /** Throws when the room can take no write (unloaded, failed). */
  assertHealthy(): void
  has(map: SealedMapName, key: string): boolean
  /** The mesh that seals the node's writes. */
  readonly sealedBy: string
  /** `checkLocalRules` of `entries`, those before `from` counting as state. */
  check(entries: NewEntry[], from: number): void
  /** Applies and seals `entries` in one transaction with `ops`; resolves when durable. */
  commit(entries: NewEntry[], ops: StoreOperation[]): Promise<void>
}

interface Queued {
  write: Write
  ops: StoreOperation[]
  resolve: () => void
  reject: (err: unknown) => void
}

interface Batch {
  entries: NewEntry[]
  keys: Set<string>
  ops: StoreOperation[]
  writers: Queued[]
  bytes: number
}

/** Most bytes (estimated) of one transaction: its update stays well under the peers' 256 KiB cap. */
export const BATCH_BYTES = 160 * 1024

export class WriteTurn {
  readonly #host: TurnHost
  #queued: Queued[] = []

  constructor(host: TurnHost) {
    this.#host = host
  }

  /** Writes waiting for the end of the turn. */
  get pending(): number {
    return this.#queued.length
  }

  /** The entries of `map` waiting for the end of the turn, with their keys, in call order. */
  queued(map: SealedMapName): Array<{ key: string; value: Entry }> {
    return this.#queued.flatMap((q) => q.write.filter((e) => e.map === map))
  }

  add(write: Write, ops: StoreOperation[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#queued.push({ write, ops, resolve, reject }) === 1) setImmediate(() => this.#run())
    })
  }

  #run(): void {
    const queued = this.#queued
    this.#queued = []
    const host = this.#host
    try {
      host.assertHealthy()
    } catch (err) {
      for (const q of queued) q.reject(err)
      return
    }
    let batch = empty()
    for (const q of queued) {
      const b = batch
      const news: NewEntry[] = q.write
        .filter((e) => !host.has(e.map, e.key) && !b.keys.has(`${e.map}/${e.key}`))
        .map((e) => ({ ...e, sealedBy: host.sealedBy }))
      const bytes = news.reduce((n, e) => n + JSON.stringify(e.value).length + e.key.length + 256, 0)
      if (b.entries.length + news.length >= MAX_BATCH_ENTRIES || b.bytes + bytes > BATCH_BYTES) {
        this.#commit(b)
        batch = empty()
      }
      try {
        host.check([...batch.entries, ...news], batch.entries.length)
      } catch (err) {
        q.reject(err)
        continue
      }
      for (const e of news) batch.keys.add(`${e.map}/${e.key}`)
      batch.entries.push(...news)
      // A write with nothing new commits nothing (as before): its ops are not written.
      if (news.length > 0) batch.ops.push(...q.ops)
      batch.writers.push(q)
      batch.bytes += bytes
    }
    this.#commit(batch)
  }

  #commit(batch: Batch): void {
    if (batch.writers.length === 0) return
    let durable: Promise<void>
    try {
      durable = this.#host.commit(batch.entries, batch.ops)
    } catch (err) {
      for (const q of batch.writers) q.reject(err)
      return
    }
    for (const q of batch.writers) durable.then(q.resolve, q.reject)
  }
}

function empty(): Batch {
  return { entries: [], keys: new Set(), ops: [], writers: [], bytes: 0 }
}
