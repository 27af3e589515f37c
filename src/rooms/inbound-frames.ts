import { type PreverifiedUpdate, preverifySeals } from './seal-preverify.ts'

/**
 * A room's peer frames between their arrival and their turn (issue 15, verify15): each
 * frame's seals are shared with the verifying thread at once (seal-preverify.ts); frames
 * apply in the order given, each once the one before it applied.
 *
 * - The frames given in one turn of the event loop (a flood of live updates) apply
 *   together at its end: the verifying thread works on their seals from the last back
 *   while the main thread applies them from the first on, and their log rows share one
 *   store write, as when each applied on arrival. Such a group closes at the end of
 *   that turn or at `GATHER_BYTES`.
 * - After a large frame (a catch-up chunk: up to a thousand entries) the event loop gets
 *   a turn before the next frame applies, so a catch-up of many chunks never holds it
 *   for longer than one chunk.
 */
const GATHER_BYTES = 64 * 1024
const LARGE_FRAME_BYTES = 16 * 1024

interface Gather {
  bytes: number
  ready: Promise<void>
}

export class InboundFrames {
  readonly #room: string
  #pending = 0
  /** Resolves when the last frame given has applied (never rejects). */
  #turn: Promise<unknown> = Promise.resolve()
  #gather: Gather | undefined

  constructor(room: string) {
    this.#room = room
  }

  /** Frames given and not yet applied. */
  get pending(): number {
    return this.#pending
  }

  /**
   * Calls `apply` with `update`'s seals shared, in its turn. `apply` must validate and
   * apply synchronously (what it returns may settle later: a durable write).
   */
  give<R>(update: Uint8Array, apply: (preverified: PreverifiedUpdate) => Promise<R>): Promise<R> {
    this.#pending++
    const preverified = preverifySeals(this.#room, update)
    const turn = Promise.all([this.#turn, this.#gatherFor(update.byteLength)]).then(() => {
      this.#pending--
      // In an object: the next frame's turn waits for this one's apply, not for what it returns.
      return { applied: apply(preverified) }
    })
    const done = turn.then(noop, noop)
    this.#turn = update.byteLength >= LARGE_FRAME_BYTES ? done.then(nextTurn) : done
    return turn.then((t) => t.applied)
  }

  #gatherFor(bytes: number): Promise<void> {
    const open = this.#gather
    if (open !== undefined && open.bytes < GATHER_BYTES) {
      open.bytes += bytes
      return open.ready
    }
    const gather: Gather = { bytes, ready: nextTurn() }
    gather.ready.then(() => {
      if (this.#gather === gather) this.#gather = undefined
    })
    this.#gather = gather
    return gather.ready
  }
}

function noop(): void {}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
