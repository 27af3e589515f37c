import * as Y from 'yjs'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'

/**
 * A room's durable state: an append-only log of Yjs updates plus, after every
 * `compactEvery` updates, a segment that replaces the updates it merged.
 *
 * Store layout (sublevel `room-updates`, one nested sublevel per room, values are
 * raw bytes): `u/<seq, 16 digits>` → update, `s/<seq, 16 digits>` → a segment: the
 * document's structs after the previous segment's end up to its own (at least every
 * update up to and including `seq`), `v/<seq, 16 digits>` → the state vector at that
 * segment's end. A segment is written and the updates it holds are deleted in one
 * atomic batch.
 *
 * Compaction costs what it writes, not the room (issue 15): a segment is the document's
 * diff since the last segment's end (`Y.encodeStateAsUpdate(doc, end)`), and two
 * neighbouring segments are joined (the diff since the older one's start) when the
 * older covers at most twice the newer's updates (a binary counter: a room of n updates
 * keeps about log2(n / compactEvery) segments, each update re-encoded about that often),
 * never into one over `maxSegmentBytes` (then the room keeps more segments, and no
 * compaction ever re-encodes a large room at once). Loading applies the segments and
 * the updates after them in order (an update a segment holds already is a no-op). A
 * store written by the earlier layout (one snapshot of the whole state, no `v/`) reads
 * as one segment.
 *
 * Writes are group-committed: every update appended in the same tick goes into one
 * LevelDB batch, and each append resolves only once its batch is written, so an
 * acknowledged update survives a SIGKILL. Unlike y-leveldb, a failed write is never
 * swallowed: its appenders are rejected and `onFailure` is told.
 */
export interface RoomLogInit {
  store: MeshStore
  room: string
  /** The room's document: every update appended is applied to it first. */
  doc: Y.Doc
  /** Updates between compactions; default 500. */
  compactEvery?: number
  /** Bytes above which two segments are not merged; default 4 MiB. */
  maxSegmentBytes?: number
  onFailure: (err: unknown) => void
}

type Bytes = Sublevel<Uint8Array>

const U = 'u/'
const S = 's/'
const V = 'v/'
const EMPTY_STATE = Y.encodeStateVector(new Y.Doc())
const pad = (seq: number): string => String(seq).padStart(16, '0')

interface Segment {
  seq: number
  /** Updates it covers. */
  count: number
  bytes: number
  /** The state vector at its end (undefined: a segment of the earlier layout, read when needed). */
  end?: Uint8Array
}

interface Pending {
  update: Uint8Array
  ops: StoreOperation[]
  resolve: () => void
  reject: (err: unknown) => void
}

export class RoomLog {
  readonly #store: MeshStore
  readonly #room: string
  readonly #doc: Y.Doc
  #sub: Bytes
  readonly #every: number
  readonly #maxSegmentBytes: number
  readonly #onFailure: (err: unknown) => void
  #seq = 0
  #snapshotSeq = 0
  /** The segments, oldest first (the last one ends at snapshotSeq). */
  #segments: Segment[] = []
  /** Seqs of updates in the log since the last segment (contiguous: snapshotSeq+1 … seq). */
  #logged = 0
  #queue: Pending[] = []
  #scheduled = false
  #flushing: Promise<void> = Promise.resolve()
  #failed: unknown

  constructor(init: RoomLogInit) {
    this.#store = init.store
    this.#room = init.room
    this.#doc = init.doc
    this.#sub = roomSublevel(init.store, init.room)
    this.#every = init.compactEvery ?? 500
    this.#maxSegmentBytes = init.maxSegmentBytes ?? 4 * 2 ** 20
    this.#onFailure = init.onFailure
  }

  /** Reads the segments and the updates after them, oldest first (to apply in this order). */
  async read(): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    this.#segments = []
    for await (const [key, value] of this.#sub.iterator({ gte: S, lt: `${S}~` })) {
      const seq = Number(key.slice(S.length))
      this.#segments.push({ seq, count: seq - this.#snapshotSeq, bytes: value.byteLength })
      this.#snapshotSeq = seq
      out.push(value)
    }
    const ends = new Map<number, Uint8Array>()
    for await (const [key, value] of this.#sub.iterator({ gte: V, lt: `${V}~` }))
      ends.set(Number(key.slice(V.length)), value)
    for (const segment of this.#segments) {
      const end = ends.get(segment.seq)
      if (end !== undefined) segment.end = end
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
    let segments = this.#segments
    try {
      if (compact) segments = await this.#compact(ops, firstSeq, lastSeq)
      else
        for (let i = 0; i < batch.length; i++)
          ops.push(this.#op('put', U + pad(firstSeq + i), batch[i]?.update))
    } catch (err) {
      this.#fail(batch, err)
      return
    }
    for (const p of batch) ops.push(...p.ops)
    try {
      await this.#store.batch(ops)
    } catch (err) {
      this.#fail(batch, err)
      return
    }
    this.#seq = lastSeq
    if (compact) {
      this.#snapshotSeq = lastSeq
      this.#segments = segments
      this.#logged = 0
    } else {
      this.#logged += batch.length
    }
    for (const p of batch) p.resolve()
  }

  /**
   * Closes the room's sublevel (an unloaded room, nothing pending): an open sublevel stays
   * attached to its parent until closed, so each load would otherwise keep one for good.
   */
  close(): void {
    this.#failed ??= new Error('room log closed')
    this.#sub.close().catch(() => {})
  }

  #fail(batch: Pending[], err: unknown): void {
    this.#failed = err
    for (const p of batch) p.reject(err)
    for (const p of this.#queue.splice(0)) p.reject(err)
    this.#onFailure(err)
  }

  /**
   * The operations of a compaction: the logged updates since the last segment and this
   * batch become one segment, merged with its older neighbours while the binary-counter
   * rule allows (see the class comment). Returns the segments after it.
   */
  async #compact(ops: StoreOperation[], firstSeq: number, lastSeq: number) {
    // The logged updates since the last segment, and this batch, are in the document already.
    for (let seq = this.#snapshotSeq + 1; seq < firstSeq; seq++) ops.push(this.#op('del', U + pad(seq)))
    const segments = [...this.#segments]
    const end = Y.encodeStateVector(this.#doc)
    let start = await this.#endOf(segments.length - 1)
    let merged = Y.encodeStateAsUpdate(this.#doc, start)
    let count = lastSeq - this.#snapshotSeq
    for (;;) {
      const prev = segments.at(-1)
      if (
        prev === undefined ||
        prev.count > 2 * count ||
        prev.bytes + merged.byteLength > this.#maxSegmentBytes
      )
        break
      start = await this.#endOf(segments.length - 2)
      merged = Y.encodeStateAsUpdate(this.#doc, start)
      ops.push(this.#op('del', S + pad(prev.seq)), this.#op('del', V + pad(prev.seq)))
      segments.pop()
      count += prev.count
    }
    ops.push(this.#op('put', S + pad(lastSeq), merged), this.#op('put', V + pad(lastSeq), end))
    segments.push({ seq: lastSeq, count, bytes: merged.byteLength, end })
    return segments
  }

  /** The state vector at the end of segment `i` (before the first: the empty one). */
  async #endOf(i: number): Promise<Uint8Array> {
    const segment = this.#segments[i]
    if (segment === undefined) return EMPTY_STATE
    if (segment.end === undefined) {
      // A segment of the earlier layout: its state vector, read once from its bytes.
      const bytes = await this.#sub.get(S + pad(segment.seq))
      segment.end = bytes === undefined ? EMPTY_STATE : Y.encodeStateVectorFromUpdate(bytes)
    }
    return segment.end
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
