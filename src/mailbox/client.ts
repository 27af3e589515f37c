import type { AbortOptions, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { exchange } from '../connections/connect-protocol.ts'
import { encodeJson, parseJson } from '../connections/peer-request.ts'
import { ERROR_STATUS, MeshError, type MeshErrorCode, ReplayError } from '../errors.ts'
import { type Ed25519KeyPair, peerIdFromDid } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import { addDialAddresses, type MeshLibp2p } from '../p2p/index.ts'
import { type MeshStore, SeenSet } from '../store/index.ts'
import { checkMailboxItem, createMailboxItem, type MailboxItem, openMailboxItem } from './item.ts'
import { MAX_FETCH_ANSWER_BYTES, MAX_MAILBOX_REQUEST_BYTES, MESH_MAILBOX_PROTOCOL } from './relay.ts'

/** What the recipient's node did with an item's plaintext: taken, or refused with a code. */
export type MailboxDelivery = { ok: true } | { ok: false; code: MeshErrorCode; message: string }

export interface MailboxClientComponents {
  libp2p: () => MeshLibp2p
  key: () => Ed25519KeyPair
  store: MeshStore
  logger: Logger
  /** The relays this mesh keeps a mailbox at (multiaddrs ending /p2p/<relay>), e.g. its `--relay-via`. */
  relays: () => string[]
  /**
   * Hands an item's plaintext (sent by `origin`) to the node. A refusal (`ok: false`) is final
   * (the item is acknowledged and gone); a throw leaves it at the relay, and the collection is
   * tried again after 1 s, doubling to a minute while it keeps failing.
   */
  deliver: (plaintext: Uint8Array, origin: string) => Promise<MailboxDelivery>
  /** An item refused before it reached `deliver` (forged, replayed, misaddressed, expired): for the audit log. */
  onRefused?: (refusal: {
    relay: string
    origin: string
    id: string
    code: MeshErrorCode
    reason: string
  }) => Promise<void>
}

export interface MailboxClientInit {
  /** How long a deposited item may wait; default 7 days (a relay may keep it less: its TTL). */
  itemTtlMs?: number
  /** The relays are asked for waiting items this often (besides at start and on reconnect); default 60 000 ms, 0 = never. */
  pollIntervalMs?: number
  /** One exchange with a relay at most; default 10 000 ms. */
  timeoutMs?: number
  now?: () => number
}

/** A throw of `deliver`: the item stays at the relay and the collection is tried again soon. */
class NotNow extends Error {}
const NOT_NOW_RETRY_MS = 1000

/** The relay part of a circuit address (`…/p2p/<relay>/p2p-circuit/…` → `…/p2p/<relay>`); undefined otherwise. */
export function relayOf(address: string): string | undefined {
  const at = address.indexOf('/p2p-circuit')
  if (at <= 0) return undefined
  const relay = address.slice(0, at)
  return /\/p2p\/[^/]+$/.test(relay) ? relay : undefined
}

/**
 * A mesh's side of `/mesh/mailbox/1.0.0`: it leaves items for peers it cannot reach at the
 * relays they name (`park`), and takes its own from its relays — at start, whenever it
 * connects to one of them, and every `pollIntervalMs` — one at a time in the relay's order:
 * check the origin's signature, that it is addressed to this mesh and not expired, the replay
 * guard (an origin's item id is taken once), open, deliver, remember the id, acknowledge.
 */
export class MailboxClient {
  readonly #c: MailboxClientComponents
  readonly #ttlMs: number
  readonly #pollIntervalMs: number
  readonly #timeoutMs: number
  readonly #now: () => number
  readonly #seen: SeenSet
  readonly #log: Logger
  readonly #draining = new Map<string, Promise<number>>()
  /** Collections cut short in a row because the node could not take an item, per relay. */
  readonly #notNow = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined
  #host: MeshLibp2p | undefined

  constructor(components: MailboxClientComponents, init: MailboxClientInit = {}) {
    this.#c = components
    this.#ttlMs = init.itemTtlMs ?? 7 * 24 * 3600_000
    this.#pollIntervalMs = init.pollIntervalMs ?? 60_000
    this.#timeoutMs = init.timeoutMs ?? 10_000
    this.#now = init.now ?? Date.now
    this.#seen = new SeenSet({ store: components.store, namespace: 'mailbox' })
    this.#log = components.logger.child({ component: 'mailbox' })
  }

  async start(): Promise<void> {
    this.#host = this.#c.libp2p()
    this.#host.addEventListener('peer:connect', this.#onConnect)
    if (this.#pollIntervalMs > 0) {
      this.#timer = setInterval(() => void this.collectAll(), this.#pollIntervalMs)
      this.#timer.unref()
    }
    void this.collectAll()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#host?.removeEventListener('peer:connect', this.#onConnect)
    this.#host = undefined
    await Promise.allSettled([...this.#draining.values()])
  }

  readonly #onConnect = (event: CustomEvent<PeerId>): void => {
    const peer = event.detail.toString()
    const relay = this.#c.relays().find((r) => r.endsWith(`/p2p/${peer}`))
    if (relay !== undefined) void this.collect(relay)
  }

  /** Registers at every relay and takes what waits there; never rejects. */
  async collectAll(): Promise<number> {
    const counts = await Promise.all(this.#c.relays().map((relay) => this.collect(relay)))
    return counts.reduce((a, b) => a + b, 0)
  }

  /**
   * Registers at `relay` and takes what waits there, one drain per relay at a time; how many
   * items were taken. Never rejects: a relay out of reach is logged and tried again later.
   */
  collect(relay: string): Promise<number> {
    const running = this.#draining.get(relay)
    if (running !== undefined) return running.then(() => this.collect(relay))
    const drain = this.#drain(relay)
      .catch((err: unknown) => {
        this.#log.info(
          { event: 'mailbox.collect_failed', relay, err: (err as Error).message },
          'mailbox not collected',
        )
        // The node could not take an item now (e.g. rate limited): soon again, not at the next poll.
        if (err instanceof NotNow && this.#host !== undefined) {
          const tries = (this.#notNow.get(relay) ?? 0) + 1
          this.#notNow.set(relay, tries)
          const delay = Math.min(NOT_NOW_RETRY_MS * 2 ** (tries - 1), 60_000)
          setTimeout(() => void this.collect(relay), delay).unref()
        }
        return 0
      })
      .finally(() => this.#draining.delete(relay))
    this.#draining.set(relay, drain)
    return drain
  }

  async #drain(relay: string): Promise<number> {
    await this.#request(relay, { op: 'register' })
    let taken = 0
    let after = 0
    for (;;) {
      const { items } = (await this.#request(relay, { op: 'fetch', after, limit: 64 })) as {
        items: Array<{ seq: number; item: unknown }>
      }
      if (items.length === 0) {
        this.#notNow.delete(relay)
        this.#log.info({ event: 'mailbox.collected', relay, items: taken }, 'mailbox collected')
        return taken
      }
      for (const { seq, item } of items) {
        after = seq
        if (await this.#take(relay, item)) taken++
        await this.#request(relay, { op: 'ack', ids: [(item as { id: string }).id] })
      }
    }
  }

  /** One item: true when delivered, false when refused (it is acknowledged either way); throws to leave it. */
  async #take(relay: string, value: unknown): Promise<boolean> {
    const raw = value as Partial<MailboxItem>
    let item: MailboxItem
    let claimed = false
    try {
      item = checkMailboxItem(value)
      const self = this.#c.key()
      if (item.recipient !== self.did) {
        throw new ReplayError('mailbox item is for another mesh', {
          reason: 'wrong-target',
          recipient: item.recipient,
        })
      }
      if (item.expiresAt <= this.#now()) {
        throw new MeshError('MESH_BAD_REQUEST', 'mailbox item has expired', { expiresAt: item.expiresAt })
      }
      if (!(await this.#seen.claim(`${item.origin}/${item.id}`, item.expiresAt + 60_000))) {
        throw new ReplayError('mailbox item was already taken', { reason: 'duplicate', id: item.id })
      }
      claimed = true
      const plaintext = openMailboxItem(self, item)
      const outcome = await this.#c.deliver(plaintext, item.origin).catch((err: unknown) => {
        throw new NotNow(String((err as Error)?.message ?? err))
      })
      await this.#c.store.batch(this.#seen.operations(`${item.origin}/${item.id}`, item.expiresAt + 60_000))
      this.#log.info(
        {
          event: 'mailbox.taken',
          relay,
          from: item.origin,
          id: item.id,
          ...(outcome.ok ? {} : { code: outcome.code }),
        },
        outcome.ok ? 'mailbox item delivered' : `mailbox item refused by the node: ${outcome.message}`,
      )
      return outcome.ok
    } catch (err) {
      if (claimed) await this.#seen.release(`${raw.origin}/${raw.id}`)
      if (!(err instanceof MeshError)) throw err
      await this.#refused(relay, raw, err)
      return false
    }
  }

  async #refused(relay: string, item: Partial<MailboxItem>, err: MeshError): Promise<void> {
    const origin = typeof item.origin === 'string' ? item.origin.slice(0, 128) : 'unknown'
    const id = typeof item.id === 'string' ? item.id.slice(0, 64) : 'unknown'
    this.#log.warn(
      { event: 'mailbox.item_refused', relay, from: origin, id, code: err.code },
      `mailbox item refused: ${err.message}`,
    )
    await this.#c.onRefused?.({ relay, origin, id, code: err.code, reason: err.message })
  }

  /**
   * Leaves `plaintext` for `recipient` at the first of `relays` that takes it; returns that
   * relay. Throws the last relay's refusal (MESH_QUOTA_EXCEEDED, MESH_NOT_FOUND: no mailbox
   * for the recipient there, …) or MESH_UNAVAILABLE.
   */
  async park(
    recipient: string,
    relays: readonly string[],
    plaintext: Uint8Array,
    options: AbortOptions = {},
  ): Promise<{ relay: string; seq: number; id: string }> {
    const item = createMailboxItem(this.#c.key(), recipient, plaintext, {
      expiresAt: this.#now() + this.#ttlMs,
    })
    let last: unknown = new MeshError('MESH_UNAVAILABLE', 'no relay is named for the peer')
    for (const relay of relays) {
      try {
        const { seq } = (await this.#request(relay, { op: 'deposit', item }, options)) as { seq: number }
        return { relay, seq, id: item.id }
      } catch (err) {
        last = err
      }
    }
    throw last
  }

  /** The relays a peer is reached through: the relay part of its circuit addresses (given and in the peer store). */
  async relaysOf(peerDid: string, known: readonly string[]): Promise<string[]> {
    const addresses = new Set(known)
    try {
      const peer = await this.#c.libp2p().peerStore.get(peerIdFromDid(peerDid))
      for (const a of peer.addresses) addresses.add(a.multiaddr.toString())
    } catch {
      // not in the peer store: what we were told is all
    }
    const relays = new Set<string>()
    for (const a of addresses) {
      const relay = relayOf(a)
      if (relay !== undefined) relays.add(relay)
    }
    return [...relays]
  }

  async #request(relay: string, request: unknown, options: AbortOptions = {}): Promise<unknown> {
    const libp2p = this.#c.libp2p()
    const peerId = /\/p2p\/([^/]+)$/.exec(relay)?.[1]
    if (peerId === undefined)
      throw new MeshError('MESH_BAD_REQUEST', 'a relay address names its peer id', { relay })
    const relayId = peerIdFromString(peerId)
    await addDialAddresses(libp2p.peerStore, relayId, [relay])
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.#timeoutMs),
      ...(options.signal ? [options.signal] : []),
    ])
    let reply: Uint8Array
    try {
      reply = await exchange(libp2p, relayId, encodeJson(request), {
        protocol: MESH_MAILBOX_PROTOCOL,
        maxBytes: MAX_FETCH_ANSWER_BYTES + MAX_MAILBOX_REQUEST_BYTES,
        signal,
      })
    } catch (err) {
      throw new MeshError('MESH_UNAVAILABLE', `the relay cannot be reached: ${(err as Error).message}`, {
        relay,
      })
    }
    const answer = parseJson(reply) as {
      ok?: unknown
      error?: { code?: unknown; message?: unknown; details?: unknown }
    }
    if (answer !== null && typeof answer === 'object' && 'ok' in answer) return answer.ok
    const error = answer?.error
    if (typeof error?.code === 'string' && error.code in ERROR_STATUS) {
      throw new MeshError(error.code as MeshErrorCode, String(error.message).slice(0, 1024), {
        ...(typeof error.details === 'object' && error.details !== null ? (error.details as object) : {}),
        relay,
      })
    }
    throw new MeshError('MESH_UNAVAILABLE', 'the relay sent an answer that is not one', { relay })
  }
}
