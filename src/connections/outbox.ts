import type { AbortOptions } from '@libp2p/interface'
import { type Logger, silentLogger } from '../log.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'
import type { ConnectCommandType, DeliveryError } from './connect-protocol.ts'

/**
 * A durable outbox per peer mesh (`outbox` sublevel), delivered in order, one message
 * in flight per peer:
 *
 * ```
 * item/1/<peer did>/<seq, 16 digits> → OutboxItem
 * ```
 *
 * An item is enqueued by the caller's own atomic batch (`enqueueOperations`), together
 * with the state change that made it, so a state change is never stored without the
 * message that tells the peer about it. An item leaves the outbox in the batch that
 * records its outcome (the delivery handler writes `removeOperations`). Transient
 * failures are retried with exponential backoff and jitter; a permanent one is handed
 * to `fail` and the queue moves on. A peer's queue is retried at once when the peer
 * connects (`kick(peer, {now: true})`) and when the node starts. A held peer's queue
 * (`held`: its connection is paused) is not tried at all until it is kicked once released.
 */
export interface OutboxItem {
  seq: number
  peer: string
  connectionId: string
  type: ConnectCommandType
  body: Record<string, unknown>
  proofs: string[]
  /** The envelope id, the same on every attempt: the receiver applies it once. */
  envelopeId: string
  enqueuedAt: number
  attempts: number
  nextAttemptAt: number
  lastError: { kind: string; code: string; message: string; at: string } | null
}

export type OutboxInput = Pick<
  OutboxItem,
  'peer' | 'connectionId' | 'type' | 'body' | 'proofs' | 'envelopeId'
>

export interface OutboxHandler {
  /**
   * Sends the item. Resolves once the outcome is stored — the handler writes
   * `outbox.removeOperations(item)` in that batch — or throws a DeliveryError.
   */
  deliver(item: OutboxItem, options: AbortOptions): Promise<void>
  /** Whether a failure is final for this item (no retry). */
  isPermanent(err: DeliveryError): boolean
  /** A permanent failure: store its consequence and `removeOperations(item)` in one batch. */
  fail(item: OutboxItem, err: DeliveryError): Promise<void>
  /** A transient failure, before the retry is scheduled (e.g. mark the peer unreachable). */
  retrying?(item: OutboxItem, err: DeliveryError, delayMs: number): Promise<void>
}

export interface OutboxInit {
  store: MeshStore
  handler: OutboxHandler
  /** First retry delay; doubled each attempt; default 1 000 ms. */
  baseDelayMs?: number
  /** Retry delay cap; default 60 000 ms. */
  maxDelayMs?: number
  logger?: Logger
  now?: () => number
  /** Jitter source in [0, 1); default Math.random. */
  random?: () => number
  /** Whether a peer's queue holds (a paused connection): nothing is sent until it is kicked again. */
  held?: (peer: string) => Promise<boolean>
}

const PREFIX = 'item/1/'
const SEQ_DIGITS = 16

interface Worker {
  running: Promise<void> | undefined
  timer: NodeJS.Timeout | undefined
  again: boolean
  force: boolean
}

export class Outbox {
  readonly #store: MeshStore
  readonly #sub: Sublevel<OutboxItem>
  readonly #handler: OutboxHandler
  readonly #base: number
  readonly #max: number
  readonly #log: Logger
  readonly #now: () => number
  readonly #random: () => number
  readonly #held: (peer: string) => Promise<boolean>
  readonly #workers = new Map<string, Worker>()
  #seq = 0
  #started = false
  #shutdown = new AbortController()

  constructor(init: OutboxInit) {
    this.#store = init.store
    this.#sub = init.store.sublevel<OutboxItem>('outbox')
    this.#handler = init.handler
    this.#base = init.baseDelayMs ?? 1000
    this.#max = init.maxDelayMs ?? 60_000
    this.#log = init.logger ?? silentLogger()
    this.#now = init.now ?? Date.now
    this.#random = init.random ?? Math.random
    this.#held = init.held ?? (async () => false)
  }

  /** Loads the sequence and retries every peer's queue at once. */
  async start(): Promise<void> {
    if (this.#started) return
    this.#shutdown = new AbortController()
    const peers = new Set<string>()
    for await (const item of this.#sub.values({ gte: PREFIX, lt: `${PREFIX}~` })) {
      this.#seq = Math.max(this.#seq, item.seq)
      peers.add(item.peer)
    }
    this.#started = true
    for (const peer of peers) this.kick(peer, { now: true })
  }

  /** Stops scheduling, aborts deliveries under way and waits for them. */
  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    this.#shutdown.abort(new Error('outbox stopped'))
    const running: Array<Promise<void>> = []
    for (const worker of this.#workers.values()) {
      clearTimeout(worker.timer)
      if (worker.running !== undefined) running.push(worker.running)
    }
    await Promise.allSettled(running)
    this.#workers.clear()
  }

  /**
   * A new item and the operations that store it; write them in the state change's batch,
   * then `kick`. With `head: n` (n ≥ 1) the item goes before everything already queued
   * for the peer (heads among themselves in n order): a key rotation announcement must
   * reach the peer before any message signed by the new key.
   */
  enqueueOperations(
    input: OutboxInput,
    options: { head?: number } = {},
  ): { item: OutboxItem; operations: StoreOperation[] } {
    const now = this.#now()
    const item: OutboxItem = {
      ...input,
      seq: options.head !== undefined ? -Math.max(1, Math.floor(options.head)) : ++this.#seq,
      enqueuedAt: now,
      attempts: 0,
      nextAttemptAt: now,
      lastError: null,
    }
    return { item, operations: [this.#put(item)] }
  }

  /** The operations that take `item` out of the outbox. */
  removeOperations(item: OutboxItem): StoreOperation[] {
    return [{ type: 'del', sublevel: this.#sub, key: itemKey(item.peer, item.seq) } as StoreOperation]
  }

  /** Items waiting for `peer` (or every peer), oldest first. */
  async pending(peer?: string): Promise<OutboxItem[]> {
    const prefix = peer === undefined ? PREFIX : `${PREFIX}${peer}/`
    const out: OutboxItem[] = []
    for await (const item of this.#sub.values({ gte: prefix, lt: `${prefix}~` })) out.push(item)
    return out
  }

  /**
   * Runs `peer`'s queue; with `now` the head is tried at once whatever its backoff
   * (the peer just connected, or an item was just enqueued behind nothing).
   */
  kick(peer: string, options: { now?: boolean } = {}): void {
    if (!this.#started) return
    let worker = this.#workers.get(peer)
    if (worker === undefined) {
      worker = { running: undefined, timer: undefined, again: false, force: false }
      this.#workers.set(peer, worker)
    }
    if (options.now === true) worker.force = true
    if (worker.running !== undefined) {
      worker.again = true
      return
    }
    clearTimeout(worker.timer)
    worker.timer = undefined
    const w = worker
    w.running = this.#run(peer, w)
      .catch((err: unknown) => {
        this.#log.error({ event: 'federation.outbox_failed', peer, err }, 'outbox worker failed')
        this.#schedule(peer, w, this.#max)
      })
      .finally(() => {
        w.running = undefined
        if (w.again && this.#started) {
          w.again = false
          this.kick(peer)
        } else if (w.timer === undefined && this.#workers.get(peer) === w) {
          // Nothing queued or scheduled: forget the peer (every connecting peer is kicked).
          this.#workers.delete(peer)
        }
      })
  }

  async #run(peer: string, worker: Worker): Promise<void> {
    while (this.#started) {
      worker.again = false
      const item = await this.#head(peer)
      if (item === undefined) return
      // A held queue waits, untouched (no attempt counted), for the kick that releases it.
      if (await this.#held(peer)) {
        this.#log.debug({ event: 'federation.outbox.held', peer, seq: item.seq }, 'outbox held: paused')
        return
      }
      const wait = item.nextAttemptAt - this.#now()
      if (wait > 0 && !worker.force) {
        this.#schedule(peer, worker, wait)
        return
      }
      worker.force = false
      const signal = this.#shutdown.signal
      try {
        await this.#handler.deliver(item, { signal })
      } catch (err) {
        if (signal.aborted) return
        const failure = err as DeliveryError
        if (typeof failure?.kind !== 'string') throw err
        if (this.#handler.isPermanent(failure)) {
          await this.#handler.fail(item, failure)
          continue
        }
        const delay = this.backoff(item.attempts + 1)
        const next: OutboxItem = {
          ...item,
          attempts: item.attempts + 1,
          nextAttemptAt: this.#now() + delay,
          lastError: {
            kind: failure.kind,
            code: failure.code,
            message: failure.message.slice(0, 512),
            at: new Date(this.#now()).toISOString(),
          },
        }
        await this.#store.batch([this.#put(next)])
        await this.#handler.retrying?.(next, failure, delay)
        if (worker.force) continue
        this.#schedule(peer, worker, delay)
        return
      }
    }
  }

  /** The delay after failed attempt `attempt`: base·2^(attempt−1), capped, then jittered to 50–100 % of that. */
  backoff(attempt: number): number {
    const raw = Math.min(this.#max, this.#base * 2 ** Math.max(0, attempt - 1))
    return Math.round(raw * (0.5 + this.#random() / 2))
  }

  #schedule(peer: string, worker: Worker, delay: number): void {
    if (!this.#started) return
    clearTimeout(worker.timer)
    worker.timer = setTimeout(() => {
      worker.timer = undefined
      this.kick(peer)
    }, delay)
    worker.timer.unref()
  }

  async #head(peer: string): Promise<OutboxItem | undefined> {
    const prefix = `${PREFIX}${peer}/`
    for await (const item of this.#sub.values({ gte: prefix, lt: `${prefix}~`, limit: 1 })) return item
    return undefined
  }

  #put(item: OutboxItem): StoreOperation {
    return {
      type: 'put',
      sublevel: this.#sub,
      key: itemKey(item.peer, item.seq),
      value: item,
    } as StoreOperation
  }
}

// Head items (negative seq) sort before every digit: '!' < '0'.
function itemKey(peer: string, seq: number): string {
  if (seq < 0) return `${PREFIX}${peer}/!${String(-seq).padStart(SEQ_DIGITS, '0')}`
  return `${PREFIX}${peer}/${String(seq).padStart(SEQ_DIGITS, '0')}`
}
