import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'

/**
 * A room's durable state: an append-only log of Yjs updates plus, after every
 * `compactEvery` updates, one snapshot that replaces the updates it merged.
 *
 * Store layout (sublevel `room-updates`, one nested sublevel per room, values are
 * raw bytes): `u/<seq, 16 digits>` → update, `s/<seq, 16 digits>` → the snapshot
 * holding every update up to and including `seq`. The snapshot is written and the
 * updates it merged are deleted in one atomic batch.
 *
 * Writes are group-committed: every update appended in the same tick goes into one
 * LevelDB batch, and each append resolves only once its batch is written, so an
 * acknowledged update survives a SIGKILL. Unlike y-leveldb, a failed write is never
 * swallowed: its appenders are rejected and `onFailure` is told.
 */
export interface RoomLogInit {
  store: MeshStore
  room: string
  /** Updates between snapshots; default 500. */
  compactEvery?: number
  /** The room's full state now, for a snapshot. */
  snapshot: () => Uint8Array
  onFailure: (err: unknown) => void
}

type Bytes = Sublevel<Uint8Array>

const U = 'u/'
const S = 's/'
const pad = (seq: number): string => String(seq).padStart(16, '0')

interface Pending {
  update: Uint8Array
  ops: StoreOperation[]
  resolve: () => void
  reject: (err: unknown) => void
}

export class RoomLog {
  readonly #store: MeshStore
  readonly #room: string
  #sub: Bytes
  readonly #every: number
  readonly #snapshot: () => Uint8Array
  readonly #onFailure: (err: unknown) => void
  #seq = 0
  #snapshotSeq = 0
  /** Seqs of updates in the log since the snapshot (contiguous: snapshotSeq+1 … seq). */
  #logged = 0
  #queue: Pending[] = []
  #scheduled = false
  #flushing: Promise<void> = Promise.resolve()
  #failed: unknown

  constructor(init: RoomLogInit) {
    this.#store = init.store
    this.#room = init.room
    this.#sub = roomSublevel(init.store, init.room)
    this.#every = init.compactEvery ?? 500
    this.#snapshot = init.snapshot
    this.#onFailure = init.onFailure
  }

  /** Reads the snapshot and the updates after it, oldest first. */
  async read(): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    for await (const [key, value] of this.#sub.iterator({ gte: S, lt: `${S}~`, reverse: true, limit: 1 })) {
      this.#snapshotSeq = Number(key.slice(S.length))
      out.push(value)
    }
    this.#seq = this.#snapshotSeq
    for await (const [key, value] of this.#sub.iterator({ gt: U + pad(this.#snapshotSeq), lt: `${U}~` })) {
      this.#seq = Number(key.slice(U.length))
      this.#logged++
      out.push(value)
    }
    return out
  }

  get seq(): number {
    return this.#seq
  }

  /** Appends an update (with other operations to commit atomically with it); resolves once durable. */
  append(update: Uint8Array, ops: StoreOperation[] = []): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed)
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ update, ops, resolve, reject })
      if (!this.#scheduled) {
        this.#scheduled = true
        // After the current writes: then every update of this tick joins one batch.
        this.#flushing = this.#flushing.then(() => this.#flush())
      }
    })
  }

  /** Resolves when everything appended so far is durable (or failed). */
  async drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#scheduled) await this.#flushing
  }

  async #flush(): Promise<void> {
    this.#scheduled = false
    const batch = this.#queue
    this.#queue = []
    if (batch.length === 0) return
    // A reopen of the store after a failure (store/store-monitor.ts) closed this nested sublevel.
    if (this.#sub.status === 'closed') this.#sub = roomSublevel(this.#store, this.#room)
    const ops: StoreOperation[] = []
    const firstSeq = this.#seq + 1
    const lastSeq = this.#seq + batch.length
    const compact = this.#logged + batch.length >= this.#every
    if (compact) {
      // The snapshot holds at least everything up to lastSeq (the doc already has these updates).
      ops.push(this.#op('put', S + pad(lastSeq), this.#snapshot()))
      if (this.#snapshotSeq > 0) ops.push(this.#op('del', S + pad(this.#snapshotSeq)))
      for (let seq = this.#snapshotSeq + 1; seq < firstSeq; seq++) ops.push(this.#op('del', U + pad(seq)))
    } else {
      for (let i = 0; i < batch.length; i++)
        ops.push(this.#op('put', U + pad(firstSeq + i), batch[i]?.update))
    }
    for (const p of batch) ops.push(...p.ops)
    try {
      await this.#store.batch(ops)
    } catch (err) {
      this.#failed = err
      for (const p of batch) p.reject(err)
      for (const p of this.#queue.splice(0)) p.reject(err)
      this.#onFailure(err)
      return
    }
    this.#seq = lastSeq
    if (compact) {
      this.#snapshotSeq = lastSeq
      this.#logged = 0
    } else {
      this.#logged += batch.length
    }
    for (const p of batch) p.resolve()
  }

  #op(type: 'put' | 'del', key: string, value?: Uint8Array): StoreOperation {
    return (
      type === 'put' ? { type, sublevel: this.#sub, key, value } : { type, sublevel: this.#sub, key }
    ) as StoreOperation
  }
}

export function roomSublevel(store: MeshStore, room: string): Bytes {
  return (
    store.sublevel('room-updates') as unknown as { sublevel: (n: string, o: object) => Bytes }
  ).sublevel(room, { valueEncoding: 'view' })
}
