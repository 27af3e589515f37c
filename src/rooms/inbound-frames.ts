import { type PreverifiedUpdate, preverifySeals } from './seal-preverify.ts'

/**
 * A room's peer frames between their arrival and their turn (issue 15, verify15): each
 * frame's seals go to libuv's thread pool at once (seal-preverify.ts); frames apply in
 * the order given, each once the one before it applied and its own seals are checked.
 *
 * - The small frames given in one turn of the event loop (a flood of live updates) apply
 *   together, once all their seals are checked: their log rows then share one store
 *   write, as when each applied on arrival. Such a group closes at the end of that turn
 *   or at `GATHER_BYTES`.
 * - After a large frame (a catch-up chunk: up to a thousand entries) the event loop gets
 *   a turn before the next frame applies, so a catch-up of many chunks never holds it
 *   for longer than one chunk.
 */
const GATHER_BYTES = 64 * 1024
const LARGE_FRAME_BYTES = 16 * 1024

interface Gather {
  seals: Array<Promise<unknown>>
  bytes: number
  ready: Promise<unknown>
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
   * Calls `apply` with `update`'s seals checked, in its turn. `apply` must validate and
   * apply synchronously (what it returns may settle later: a durable write).
   */
  give<R>(update: Uint8Array, apply: (preverified: PreverifiedUpdate) => Promise<R>): Promise<R> {
    this.#pending++
    const seals = preverifySeals(this.#room, update)
    const gather = this.#gatherFor(update.byteLength)
    gather.seals.push(seals)
    const turn = Promise.all([seals, this.#turn, gather.ready]).then(([preverified]) => {
      this.#pending--
      // In an object: the next frame's turn waits for this one's apply, not for what it returns.
      return { applied: apply(preverified) }
    })
    const done = turn.then(noop, noop)
    this.#turn = update.byteLength >= LARGE_FRAME_BYTES ? done.then(nextTurn) : done
    return turn.then((t) => t.applied)
  }

  #gatherFor(bytes: number): Gather {
    const open = this.#gather
    if (open !== undefined && open.bytes < GATHER_BYTES) {
      open.bytes += bytes
      return open
    }
    const seals: Array<Promise<unknown>> = []
    const gather: Gather = {
      seals,
      bytes,
      ready: new Promise((resolve) =>
        setImmediate(() => {
          if (this.#gather === gather) this.#gather = undefined
          resolve(Promise.all(seals))
        }),
      ),
    }
    this.#gather = gather
    return gather
  }
}

function noop(): void {}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
