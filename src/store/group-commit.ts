/**
 * Group commit (issue 15): every `MeshStore.batch` of a tick — every room's log rows,
 * seals, notifications, audit rows — goes to LevelDB as ONE atomic batch with one fsync,
 * and while that write is on its way to the disk, the batches that arrive after it wait
 * and then go together in the next one. One write at a time, in the order the batches
 * were given: a batch is never durable before one given earlier (a crash loses a suffix
 * of what was not yet acknowledged, never a hole in the middle).
 *
 * Each caller's promise resolves once the write holding its operations is done (synced
 * if any of them asked: see MeshStore's `#durable`). A failed merged write is retried as
 * its callers' own batches, one after the other, so an operation that LevelDB refuses
 * (a malformed key, a closed sublevel) fails only its own caller's batch, as it did
 * before batches were merged; a disk error fails each of them in turn.
 */
export type Write<Op> = (operations: Op[]) => Promise<void>

interface Waiting<Op> {
  operations: Op[]
  resolve: () => void
  reject: (err: unknown) => void
}

export class GroupCommit<Op> {
  readonly #write: Write<Op>
  #queue: Array<Waiting<Op>> = []
  #busy = false
  #idle: Array<() => void> = []
  /** Writes done and batches merged into them (for tests and benches). */
  readonly stats = { writes: 0, batches: 0 }

  constructor(write: Write<Op>) {
    this.#write = write
  }

  /** Commits `operations` with whatever else is waiting; resolves once they are written. */
  commit(operations: Op[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ operations, resolve, reject })
      if (this.#busy) return
      this.#busy = true
      // The rest of this turn of the event loop's batches (the other requests, frames and
      // rooms handled in it) join this write: fewer fsyncs than writing the first alone.
      setImmediate(() => void this.#drain())
    })
  }

  /** Resolves once every batch given so far is written (or failed): before the store closes. */
  settled(): Promise<void> {
    if (!this.#busy) return Promise.resolve()
    return new Promise<void>((resolve) => this.#idle.push(resolve))
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const group = this.#queue
      this.#queue = []
      this.stats.writes++
      this.stats.batches += group.length
      if (group.length === 1) {
        const only = group[0] as Waiting<Op>
        await this.#attempt(only.operations).then(only.resolve, only.reject)
        continue
      }
      const operations: Op[] = []
      for (const w of group) for (const op of w.operations) operations.push(op)
      try {
        await this.#attempt(operations)
        for (const w of group) w.resolve()
      } catch {
        // Not one of them was written (a LevelDB batch is atomic): each alone, in order.
        for (const w of group) await this.#attempt(w.operations).then(w.resolve, w.reject)
      }
    }
    this.#busy = false
    for (const resolve of this.#idle.splice(0)) resolve()
  }

  /** The write, a synchronous throw (a store not open) turned into a rejection. */
  async #attempt(operations: Op[]): Promise<void> {
    await this.#write(operations)
  }
}
