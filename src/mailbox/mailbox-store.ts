import { MeshError, NotFoundError, ReplayError } from '../errors.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'
import { type MailboxItem, mailboxItemBytes } from './item.ts'

/**
 * A relay's mailboxes (`mailbox` sublevel), one per recipient mesh that asked for one:
 *
 * ```
 * box/1/<recipient>                         → {since}                 the recipient asked for a mailbox
 * item/1/<recipient>/<seq, 16 digits>       → StoredItem              in deposit order
 * id/1/<recipient>/<origin>/<id>            → seq                     one item per origin and id
 * meta/1/seq                                → the last seq given
 * ```
 *
 * Within a quota per recipient (items and bytes; MESH_QUOTA_EXCEEDED beyond), each item
 * kept until it is acknowledged or its time is up: `min(item.expiresAt, storedAt + ttlMs)`.
 */
export interface MailboxLimits {
  /** How long an item is kept at most; default 7 days. */
  ttlMs: number
  /** Items waiting for one recipient at most; default 1 000. */
  maxItems: number
  /** Bytes (items' JSON) waiting for one recipient at most; default 16 MiB. */
  maxBytes: number
  /** Meshes with a mailbox here at most; default 1 000. */
  maxMailboxes: number
  /** Bytes kept for all of them together at most; default 1 GiB. */
  maxTotalBytes: number
}

export const MAILBOX_DEFAULTS: MailboxLimits = {
  ttlMs: 7 * 24 * 3600_000,
  maxItems: 1000,
  maxBytes: 16 * 1024 * 1024,
  maxMailboxes: 1000,
  maxTotalBytes: 1024 * 1024 * 1024,
}

export interface StoredItem {
  seq: number
  storedAt: number
  /** When the relay drops it: the item's own expiry or the relay's TTL then, whichever is sooner (a TTL lowered since applies too). */
  dropAt: number
  bytes: number
  item: MailboxItem
}

const PAD = 16
const pad = (n: number) => String(n).padStart(PAD, '0')

export class MailboxStore {
  readonly #store: MeshStore
  readonly #sub: Sublevel<unknown>
  readonly #limits: MailboxLimits
  readonly #now: () => number
  #seq = 0
  #boxes = 0
  #totalBytes = 0
  // What waits per recipient, counted once from the store and kept up to date (expired items
  // count until pruned; a deposit refused on these counts is checked again against the store).
  readonly #usage = new Map<string, { items: number; bytes: number }>()
  // Deposits and acks run one at a time: a quota is checked and charged without a gap.
  #queue: Promise<unknown> = Promise.resolve()

  constructor(init: { store: MeshStore; limits?: Partial<MailboxLimits>; now?: () => number }) {
    this.#store = init.store
    this.#sub = init.store.sublevel('mailbox')
    this.#limits = { ...MAILBOX_DEFAULTS, ...init.limits }
    this.#now = init.now ?? Date.now
  }

  get limits(): MailboxLimits {
    return this.#limits
  }

  async open(): Promise<void> {
    this.#seq = ((await this.#sub.get('meta/1/seq')) as number | undefined) ?? 0
    this.#boxes = 0
    for await (const _ of this.#sub.keys({ gt: 'box/1/', lt: 'box/1/~' })) this.#boxes++
    this.#totalBytes = 0
    for await (const value of this.#sub.values({ gt: 'item/1/', lt: 'item/1/~' })) {
      this.#totalBytes += (value as StoredItem).bytes
    }
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn)
    this.#queue = run.catch(() => {})
    return run
  }

  /** `recipient` asks for a mailbox here (true: a new one); MESH_QUOTA_EXCEEDED when the relay keeps as many as it may. */
  register(recipient: string): Promise<boolean> {
    return this.#serial(async () => {
      if (await this.registered(recipient)) return false
      if (this.#boxes >= this.#limits.maxMailboxes) {
        throw new MeshError('MESH_QUOTA_EXCEEDED', 'this relay keeps no more mailboxes', {
          maxMailboxes: this.#limits.maxMailboxes,
        })
      }
      await this.#sub.put(`box/1/${recipient}`, { since: this.#now() })
      this.#boxes++
      return true
    })
  }

  async registered(recipient: string): Promise<boolean> {
    return (await this.#sub.get(`box/1/${recipient}`)) !== undefined
  }

  /**
   * Keeps a checked item for its recipient: MESH_NOT_FOUND (no mailbox for it here),
   * MESH_BAD_REQUEST (already expired), MESH_REPLAY (this origin's id is already kept),
   * MESH_QUOTA_EXCEEDED (the recipient's items or bytes would pass the quota).
   */
  deposit(item: MailboxItem): Promise<StoredItem> {
    return this.#serial(async () => {
      const now = this.#now()
      if (!(await this.registered(item.recipient))) {
        throw new NotFoundError('no mailbox for this mesh here', { recipient: item.recipient })
      }
      if (item.expiresAt <= now) {
        throw new MeshError('MESH_BAD_REQUEST', 'mailbox item has expired', {
          expiresAt: item.expiresAt,
          now,
        })
      }
      const idKey = `id/1/${item.recipient}/${item.origin}/${item.id}`
      if ((await this.#sub.get(idKey)) !== undefined) {
        throw new ReplayError('mailbox item id was already deposited', { reason: 'duplicate', id: item.id })
      }
      const bytes = mailboxItemBytes(item)
      const over = (u: { items: number; bytes: number }) =>
        u.items + 1 > this.#limits.maxItems || u.bytes + bytes > this.#limits.maxBytes
      let usage = await this.#counted(item.recipient)
      if (over(usage)) {
        usage = await this.usage(item.recipient)
        this.#usage.set(item.recipient, usage)
      }
      if (this.#totalBytes + bytes > this.#limits.maxTotalBytes) {
        throw new MeshError('MESH_QUOTA_EXCEEDED', 'this relay’s mailboxes are full', {
          maxTotalBytes: this.#limits.maxTotalBytes,
        })
      }
      if (over(usage)) {
        throw new MeshError('MESH_QUOTA_EXCEEDED', 'the recipient’s mailbox is full', {
          recipient: item.recipient,
          items: usage.items,
          bytes: usage.bytes,
          maxItems: this.#limits.maxItems,
          maxBytes: this.#limits.maxBytes,
        })
      }
      const seq = this.#seq + 1
      const stored: StoredItem = {
        seq,
        storedAt: now,
        dropAt: Math.min(item.expiresAt, now + this.#limits.ttlMs),
        bytes,
        item,
      }
      await this.#store.batch([
        { type: 'put', sublevel: this.#sub, key: `item/1/${item.recipient}/${pad(seq)}`, value: stored },
        { type: 'put', sublevel: this.#sub, key: idKey, value: seq },
        { type: 'put', sublevel: this.#sub, key: 'meta/1/seq', value: seq },
      ] as StoreOperation[])
      this.#seq = seq
      this.#usage.set(item.recipient, { items: usage.items + 1, bytes: usage.bytes + bytes })
      this.#totalBytes += bytes
      return stored
    })
  }

  /** The recipient's items in deposit order (expired ones left out), after `afterSeq`, at most `limit`. */
  async list(recipient: string, options: { afterSeq?: number; limit?: number } = {}): Promise<StoredItem[]> {
    const now = this.#now()
    const prefix = `item/1/${recipient}/`
    const out: StoredItem[] = []
    for await (const value of this.#sub.values({
      gt: `${prefix}${pad(options.afterSeq ?? 0)}`,
      lt: `${prefix}~`,
    })) {
      const stored = value as StoredItem
      if (this.#expired(stored, now)) continue
      out.push(stored)
      if (out.length >= (options.limit ?? 64)) break
    }
    return out
  }

  async #counted(recipient: string): Promise<{ items: number; bytes: number }> {
    let usage = this.#usage.get(recipient)
    if (usage === undefined) {
      usage = await this.usage(recipient)
      this.#usage.set(recipient, usage)
    }
    return usage
  }

  /** What waits for `recipient` now: items and their bytes (expired ones not counted). */
  async usage(recipient: string): Promise<{ items: number; bytes: number }> {
    const now = this.#now()
    let items = 0
    let bytes = 0
    const prefix = `item/1/${recipient}/`
    for await (const value of this.#sub.values({ gt: prefix, lt: `${prefix}~` })) {
      const stored = value as StoredItem
      if (this.#expired(stored, now)) continue
      items++
      bytes += stored.bytes
    }
    return { items, bytes }
  }

  /** The recipient acknowledged these ids: deleted (an id it does not have is skipped); how many. */
  ack(recipient: string, ids: readonly string[]): Promise<number> {
    return this.#serial(async () => {
      const wanted = new Set(ids)
      const ops: StoreOperation[] = []
      let bytes = 0
      const prefix = `item/1/${recipient}/`
      for await (const [key, value] of this.#sub.iterator({ gt: prefix, lt: `${prefix}~` })) {
        const stored = value as StoredItem
        if (!wanted.has(stored.item.id)) continue
        ops.push(...this.#deleteOps(key, stored))
        bytes += stored.bytes
        if (ops.length / 2 === wanted.size) break
      }
      if (ops.length > 0) await this.#store.batch(ops)
      this.#totalBytes -= bytes
      const usage = this.#usage.get(recipient)
      if (usage !== undefined) {
        this.#usage.set(recipient, { items: usage.items - ops.length / 2, bytes: usage.bytes - bytes })
      }
      return ops.length / 2
    })
  }

  /** Drops every item whose time is up; returns how many. */
  prune(): Promise<number> {
    return this.#serial(async () => {
      const now = this.#now()
      const ops: StoreOperation[] = []
      let bytes = 0
      for await (const [key, value] of this.#sub.iterator({ gt: 'item/1/', lt: 'item/1/~' })) {
        const stored = value as StoredItem
        if (!this.#expired(stored, now)) continue
        ops.push(...this.#deleteOps(key, stored))
        bytes += stored.bytes
      }
      if (ops.length > 0) await this.#store.batch(ops)
      this.#totalBytes -= bytes
      if (ops.length > 0) this.#usage.clear()
      return ops.length / 2
    })
  }

  #expired(stored: StoredItem, now: number): boolean {
    return Math.min(stored.dropAt, stored.storedAt + this.#limits.ttlMs) <= now
  }

  #deleteOps(key: string, stored: StoredItem): StoreOperation[] {
    const { recipient, origin, id } = stored.item
    return [
      { type: 'del', sublevel: this.#sub, key },
      { type: 'del', sublevel: this.#sub, key: `id/1/${recipient}/${origin}/${id}` },
    ] as StoreOperation[]
  }
}
