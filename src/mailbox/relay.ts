import type { Connection, Stream } from '@libp2p/interface'
import { serveExchange } from '../connections/connect-protocol.ts'
import {
  encodeJson,
  errorAnswer,
  ProtocolHandler,
  parseJson,
  perMinute,
} from '../connections/peer-request.ts'
import { MeshError, SignatureMismatchError } from '../errors.ts'
import { didFromPeerId } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import type { MeshLibp2p } from '../p2p/index.ts'
import { lazyValidator } from '../schema.ts'
import type { MeshStore } from '../store/index.ts'
import { checkMailboxItem, MAX_MAILBOX_ITEM_BYTES } from './item.ts'
import { type MailboxLimits, MailboxStore, type StoredItem } from './mailbox-store.ts'

/**
 * `/mesh/mailbox/1.0.0` — store and forward (SPEC §10). One stream per request, varint
 * length-prefixed UTF-8 JSON, one answer `{"ok": …}` or `{"error": {code, message, details}}`:
 *
 * ```
 * → {"op":"register"}                      ← {"ok": {"limits"}}        the caller asks for a mailbox here
 * → {"op":"deposit","item": MailboxItem}   ← {"ok": {"seq"}}           the caller (the item's origin) leaves an item
 * → {"op":"fetch","after"?: seq,"limit"?}  ← {"ok": {"items": [{seq, item}]}}   the caller's items, in order
 * → {"op":"ack","ids": [id]}               ← {"ok": {"deleted"}}       the caller took them: deleted
 * ```
 *
 * The caller is the libp2p peer of the stream: only a mesh's own key registers, fetches and
 * acks its mailbox, and a deposit's item must be signed by the caller (its origin). The relay
 * serves it on hosts started with `relay` (`mesh start --relay`).
 */
export const MESH_MAILBOX_PROTOCOL = '/mesh/mailbox/1.0.0'
/** A request frame at most: one item and its envelope. */
export const MAX_MAILBOX_REQUEST_BYTES = MAX_MAILBOX_ITEM_BYTES + 1024
/** A fetch answer at most this many bytes (items are added while they fit; one always does). */
export const MAX_FETCH_ANSWER_BYTES = 1024 * 1024

const POSITION = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const
const ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' } as const
const op = (name: string, properties: Record<string, unknown> = {}, required: string[] = []) => ({
  type: 'object',
  additionalProperties: false,
  required: ['op', ...required],
  properties: { op: { const: name }, ...properties },
})
const requestSchema = {
  oneOf: [
    op('register'),
    op('deposit', { item: { type: 'object' } }, ['item']),
    op('fetch', { after: POSITION, limit: { type: 'integer', minimum: 1, maximum: 256 } }),
    op('ack', { ids: { type: 'array', minItems: 1, maxItems: 256, items: ID } }, ['ids']),
  ],
} as const
type MailboxRequest =
  | { op: 'register' }
  | { op: 'deposit'; item: unknown }
  | { op: 'fetch'; after?: number; limit?: number }
  | { op: 'ack'; ids: string[] }
const validRequest = lazyValidator<MailboxRequest>(requestSchema)

export interface MailboxRelayInit extends Partial<MailboxLimits> {
  /** Requests one peer may send per minute (token bucket, burst the same); default 6 000. */
  requestsPerMinute?: number
  /** Expired items are dropped this often; default 60 000 ms. */
  pruneIntervalMs?: number
  /** Inbound streams at once per connection; default 16. */
  maxInboundStreams?: number
  /** One exchange at most; default 10 000 ms. */
  timeoutMs?: number
  now?: () => number
}

export interface MailboxRelayComponents {
  libp2p: () => MeshLibp2p
  store: MeshStore
  logger: Logger
  /** A refusal of a peer's request (for the rejected log); must not throw. */
  onRefused?: (peer: string, op: string, err: MeshError) => void
}

/** The relay's side of `/mesh/mailbox/1.0.0`: keeps items for registered meshes while they are away. */
export class MailboxRelay {
  readonly #c: MailboxRelayComponents
  readonly #mailboxes: MailboxStore
  readonly #handler: ProtocolHandler
  readonly #limiter
  readonly #timeoutMs: number
  readonly #pruneIntervalMs: number
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined

  constructor(components: MailboxRelayComponents, init: MailboxRelayInit = {}) {
    this.#c = components
    this.#log = components.logger.child({ component: 'mailbox' })
    const { requestsPerMinute, pruneIntervalMs, maxInboundStreams, timeoutMs, now, ...limits } = init
    this.#mailboxes = new MailboxStore({
      store: components.store,
      limits: Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)),
      ...(now !== undefined ? { now } : {}),
    })
    this.#limiter = perMinute(requestsPerMinute ?? 6000)
    this.#timeoutMs = timeoutMs ?? 10_000
    this.#pruneIntervalMs = pruneIntervalMs ?? 60_000
    this.#handler = new ProtocolHandler({
      protocol: MESH_MAILBOX_PROTOCOL,
      libp2p: components.libp2p,
      maxInboundStreams: maxInboundStreams ?? 16,
      serve: async (stream, connection) => this.#serve(stream, connection),
    })
  }

  /** The mailboxes (for tests and the bench: what waits, and the limits in force). */
  get mailboxes(): MailboxStore {
    return this.#mailboxes
  }

  async start(): Promise<void> {
    await this.#mailboxes.open()
    await this.prune()
    await this.#handler.start()
    this.#timer = setInterval(() => void this.prune(), this.#pruneIntervalMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#handler.stop()
  }

  /** Drops the items whose time is up; never rejects (a failure is logged). */
  async prune(): Promise<number> {
    try {
      const dropped = await this.#mailboxes.prune()
      if (dropped > 0)
        this.#log.info({ event: 'mailbox.dropped', items: dropped }, 'expired mailbox items dropped')
      return dropped
    } catch (err) {
      this.#log.error({ event: 'mailbox.prune_failed', err }, 'dropping expired mailbox items failed')
      return 0
    }
  }

  async #serve(stream: Stream, connection: Connection): Promise<void> {
    await serveExchange(
      stream,
      connection,
      async (bytes) => encodeJson(await this.#answer(bytes, connection)),
      {
        maxBytes: MAX_MAILBOX_REQUEST_BYTES,
        signal: AbortSignal.timeout(this.#timeoutMs),
        onError: (err) => {
          this.#log.debug({ event: 'mailbox.stream_cut', err: (err as Error).message }, 'mailbox stream cut')
          if ((err as Error).name === 'InvalidDataLengthError') {
            this.#refused(
              String(connection.remotePeer),
              'request',
              new MeshError(
                'MESH_TOO_LARGE',
                `a mailbox request is at most ${MAX_MAILBOX_REQUEST_BYTES} bytes`,
              ),
            )
          }
        },
      },
    )
  }

  async #answer(bytes: Uint8Array, connection: Connection): Promise<unknown> {
    let caller = 'unknown'
    let name = 'request'
    try {
      caller = didFromPeerId(connection.remotePeer)
      this.#limiter.consume(caller)
      const request = parseJson(bytes)
      if (!validRequest(request)) {
        throw new MeshError('MESH_BAD_REQUEST', 'not a mailbox request', {
          validation: validRequest.errors?.[0]?.message ?? 'not JSON',
        })
      }
      name = request.op
      return { ok: await this.#run(caller, request) }
    } catch (err) {
      if (err instanceof MeshError) this.#refused(caller, name, err)
      else this.#log.error({ event: 'mailbox.request_failed', peer: caller, err }, 'mailbox request failed')
      return errorAnswer(err, 'the mailbox request failed on the relay')
    }
  }

  async #run(caller: string, request: MailboxRequest): Promise<unknown> {
    switch (request.op) {
      case 'register': {
        if (await this.#mailboxes.register(caller)) {
          this.#log.info({ event: 'mailbox.registered', mesh: caller }, 'mailbox opened for a mesh')
        }
        return { limits: this.#mailboxes.limits }
      }
      case 'deposit': {
        const item = checkMailboxItem(request.item)
        if (item.origin !== caller) {
          throw new SignatureMismatchError('a mailbox item is deposited by its origin', {
            origin: item.origin,
            caller,
          })
        }
        const stored = await this.#mailboxes.deposit(item)
        this.#log.debug(
          {
            event: 'mailbox.deposited',
            from: caller,
            to: item.recipient,
            seq: stored.seq,
            bytes: stored.bytes,
          },
          'mailbox item kept',
        )
        return { seq: stored.seq }
      }
      case 'fetch': {
        const items: Array<Pick<StoredItem, 'seq' | 'item'>> = []
        let size = 0
        for (const stored of await this.#mailboxes.list(caller, {
          ...(request.after !== undefined ? { afterSeq: request.after } : {}),
          limit: request.limit ?? 64,
        })) {
          size += stored.bytes + 32
          if (items.length > 0 && size > MAX_FETCH_ANSWER_BYTES) break
          items.push({ seq: stored.seq, item: stored.item })
        }
        return { items }
      }
      case 'ack':
        return { deleted: await this.#mailboxes.ack(caller, request.ids) }
    }
  }

  #refused(peer: string, op: string, err: MeshError): void {
    this.#log.info(
      { event: 'mailbox.refused', peer, op, code: err.code, reason: err.message },
      'mailbox refused',
    )
    try {
      this.#c.onRefused?.(peer, op, err)
    } catch {
      // the hook must not throw; a failure there is not the caller's
    }
  }
}
