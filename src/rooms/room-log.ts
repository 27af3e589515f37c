import type * as YT from 'yjs'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'
import { Y } from './lazy-yjs.ts' // issue 15: loaded on first use

/**
 * A room's durable state: an append-only log of Yjs updates plus, after every
 * `compactEvery` updates or `compactBytes` of them, a segment that replaces the updates
 * it merged.
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
 * Writes are group-committed by the store (store/group-commit.ts): every update appended
 * in a tick, in this room or any other, and every other batch of that tick, goes into one
 * LevelDB write and fsync, in the order appended; each append resolves only once its row
 * is written, so an acknowledged update survives a SIGKILL, and a crash loses only a
 * suffix of what was not acknowledged. A compaction is its own batch, given to the store
 * after the rows it merges (in a later tick): its encoding never delays an append's
 * answer. Unlike y-leveldb, a failed write is never swallowed: its appender is rejected,
 * the log refuses every later append and `onFailure` is told (once).
 */
export interface RoomLogInit {
  store: MeshStore
  room: string
  /** The room's document: every update appended is applied to it first. */
  doc: YT.Doc
  /** Updates between compactions; default 500. */
  compactEvery?: number
  /**
   * Bytes of updates between compactions (whichever of this and `compactEvery` comes
   * first); default `maxSegmentBytes` (issue 15, p99: that bounds the joins, and this the
   * diff encoded before them; a peer's updates carry many messages each, so 500 of them
   * were 0.3–1.5 MiB in the relay bench, one encode that held beta's event loop 8–25 ms.
   * No lower: a diff of less is joined with its older neighbour, each byte encoded again).
   */
  compactBytes?: number
  /**
   * Bytes above which two segments are not merged; default 256 KiB (issue 15, p99: a
   * merge is encoded on the event loop, about 7 ms a MiB on the 2-core bench machine; at
   * 4 MiB every post and frame behind one waited 30–70 ms, while loading a room of many
   * segments costs about what loading it as one does).
   */
  maxSegmentBytes?: number
  onFailure: (err: unknown) => void
}

type Bytes = Sublevel<Uint8Array>

const U = 'u/'
const S = 's/'
const V = 'v/'
// issue 15 (cold start): computed on first use, so importing this module loads no Yjs
let emptyState: Uint8Array | undefined
const EMPTY_STATE = () => (emptyState ??= Y.encodeStateVector(new Y.Doc()))
/** issue 15 (p99): the default `maxSegmentBytes` (see RoomLogInit). */
export const MAX_SEGMENT_BYTES = 256 * 1024
const pad = (seq: number): string => String(seq).padStart(16, '0')

interface Segment {
  seq: number
  /** Updates it covers. */
  count: number
  bytes: number
  /** The state vector at its end (undefined: a segment of the earlier layout, read when needed). */
  end?: Uint8Array
}

export class RoomLog {
  readonly #store: MeshStore
  readonly #room: string
  readonly #doc: YT.Doc
  #sub: Bytes
  readonly #every: number
  readonly #everyBytes: number
  readonly #maxSegmentBytes: number
  readonly #onFailure: (err: unknown) => void
  #seq = 0
  #snapshotSeq = 0
  /** The segments, oldest first (the last one ends at snapshotSeq). */
  #segments: Segment[] = []
  /** Seqs of updates in the log since the last segment (contiguous: snapshotSeq+1 … seq). */
  #logged = 0
  /** Their bytes. */
  #loggedBytes = 0
  /** The last write given to the store (the store writes them in order: all before it are done when it is). */
  #tail: Promise<unknown> = Promise.resolve()
  #compacting = false
  /** The compaction under way (resolves, never rejects, when it is done). */
  #compaction: Promise<void> = Promise.resolve()
  #closed = false
  #failed: unknown

  constructor(init: RoomLogInit) {
    this.#store = init.store
    this.#room = init.room
    this.#doc = init.doc
    this.#sub = roomSublevel(init.store, init.room)
    this.#every = init.compactEvery ?? 500
    this.#maxSegmentBytes = init.maxSegmentBytes ?? MAX_SEGMENT_BYTES
    this.#everyBytes = init.compactBytes ?? this.#maxSegmentBytes
    this.#onFailure = init.onFailure
  }

  /** Reads the segments and the updates after them, oldest first (to apply in this order). */
  async read(): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    const rows: Array<[number, Uint8Array]> = []
    const ends = new Map<number, Uint8Array>()
    this.#segments = []
    // One iterator, so one snapshot of the store: a compaction landing while a room loads is
    // seen whole or not at all (`s/` < `u/` < `v/`: segments, then updates, then ends).
    for await (const [key, value] of this.#sub.iterator({ gte: S, lt: `${V}~` })) {
      const seq = Number(key.slice(2))
      if (key.startsWith(S)) {
        this.#segments.push({ seq, count: seq - this.#snapshotSeq, bytes: value.byteLength })
        this.#snapshotSeq = seq
        out.push(value)
      } else if (key.startsWith(U)) {
        if (seq > this.#snapshotSeq) rows.push([seq, value])
      } else if (key.startsWith(V)) ends.set(seq, value)
    }
    for (const segment of this.#segments) {
      const end = ends.get(segment.seq)
      if (end !== undefined) segment.end = end
    }
    this.#seq = this.#snapshotSeq
    for (const [seq, value] of rows) {
      this.#seq = seq
      this.#logged++
      this.#loggedBytes += value.byteLength
      out.push(value)
    }
    return out
  }

  /** Whether a compaction is under way (the room stays loaded until it is done). */
  get busy(): boolean {
    return this.#compacting
  }

  get seq(): number {
    return this.#seq
  }

  /**
   * Appends an update (with other operations to commit atomically with it); resolves once
   * durable. The row goes to the store at once: the store group-commits it with every other
   * batch of the tick, every room's (store/group-commit.ts), and writes in the order given.
   */
  append(update: Uint8Array, ops: StoreOperation[] = []): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed)
    // A reopen of the store after a failure (store/store-monitor.ts) closed this nested sublevel.
    if (this.#sub.status === 'closed' && !this.#closed) this.#sub = roomSublevel(this.#store, this.#room)
    this.#seq++
    const write = this.#store.batch([this.#op('put', U + pad(this.#seq), update), ...ops])
    this.#tail = write
    this.#logged++
    this.#loggedBytes += update.byteLength
    if ((this.#logged >= this.#every || this.#loggedBytes >= this.#everyBytes) && !this.#compacting) {
      this.#compacting = true
      // Off this write's path: the rows it merges are given to the store before it.
      this.#compaction = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#compactNow())
    }
    return write.catch((err: unknown) => {
      this.#fail(err)
      throw err
    })
  }

  /** Resolves when everything appended so far is durable (or failed), compaction included. */
  async drain(): Promise<void> {
    for (;;) {
      const tail = this.#tail
      await tail.catch(() => {})
      if (tail === this.#tail && !this.#compacting) return
      await this.#compaction
    }
  }

  /**
   * Writes a segment of every update logged so far (and deletes their rows) in one batch,
   * after them in the store's order. A failure fails the log as a failed append does.
   */
  async #compactNow(): Promise<void> {
    try {
      if (this.#failed !== undefined || this.#closed) return
      const last = this.#seq
      const bytes = this.#loggedBytes
      const ops: StoreOperation[] = []
      const segments = await this.#compact(ops, last)
      if (this.#failed !== undefined || this.#closed) return
      const write = this.#store.batch(ops)
      this.#tail = write
      await write
      this.#snapshotSeq = last
      this.#segments = segments
      this.#logged = this.#seq - last
      this.#loggedBytes -= bytes
    } catch (err) {
      this.#fail(err)
    } finally {
      this.#compacting = false
    }
  }

  /**
   * Closes the room's sublevel (an unloaded room, nothing pending): an open sublevel stays
   * attached to its parent until closed, so each load would otherwise keep one for good.
   */
  close(): void {
    this.#failed ??= new Error('room log closed')
    this.#closed = true
    void this.drain().then(() => this.#sub.close().catch(() => {}))
  }

  /** The first failure fails the log: later appends are refused, `onFailure` is told once. */
  #fail(err: unknown): void {
    if (this.#failed !== undefined) return
    this.#failed = err
    this.#onFailure(err)
  }

  /**
   * The operations of a compaction: the logged updates since the last segment and this
   * batch become one segment, merged with its older neighbours while the binary-counter
   * rule allows (see the class comment). Returns the segments after it.
   */
  async #compact(ops: StoreOperation[], lastSeq: number) {
    // The logged updates since the last segment are in the document already.
    for (let seq = this.#snapshotSeq + 1; seq <= lastSeq; seq++) ops.push(this.#op('del', U + pad(seq)))
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
    if (segment === undefined) return EMPTY_STATE()
    if (segment.end === undefined) {
      // A segment of the earlier layout: its state vector, read once from its bytes.
      const bytes = await this.#sub.get(S + pad(segment.seq))
      segment.end = bytes === undefined ? EMPTY_STATE() : Y.encodeStateVectorFromUpdate(bytes)
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
