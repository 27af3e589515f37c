import type { AbortOptions } from '@libp2p/interface'
import { BadRequestError, type MeshErrorCode } from '../errors.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { MeshStore, Sublevel } from '../store/index.ts'
import { CONNECT_MESSAGE, classifyDeliveryError, DeliveryError } from './connect-protocol.ts'
import { ENVELOPE_LIMITS } from './envelope.ts'

/**
 * Phase-1 federation over plain HTTP (SPEC §12, seed 003): the same signed envelopes as
 * `/mesh/connect/1.0.0` and `/mesh/rooms/1.0.0`, one envelope per `POST`, the signed
 * reply envelope in the response body.
 *
 * ```
 * POST /connections/request      connect.request
 * POST /connections/accepted     connect.accept
 * POST /connections/declined     connect.decline
 * POST /connections/disconnect   connect.disconnect
 * POST /federation/send          every other envelope (key rotation, revocation, checkpoints, room frames)
 * ```
 *
 * The receiving side (`HttpFederation.receive`) feeds the bytes to the very handler that
 * serves the libp2p stream (rate limit, envelope check, replay guard, policy, human acts,
 * state machine), the peer being the envelope's origin: over HTTP nothing but the
 * signature says who sent it, and the envelope check refuses any origin whose signature
 * does not verify. The sending side (`HttpRoute`) is the outbox's fallback when libp2p
 * cannot reach a peer that told us its HTTP base (`http` in its connect.request).
 */
export const HTTP_FEDERATION_PATHS = {
  request: '/connections/request',
  accepted: '/connections/accepted',
  declined: '/connections/declined',
  disconnect: '/connections/disconnect',
  send: '/federation/send',
} as const
export type HttpFederationPath = (typeof HTTP_FEDERATION_PATHS)[keyof typeof HTTP_FEDERATION_PATHS]

/** The message types each handshake path takes; `/federation/send` takes every other type. */
const TYPES_OF_PATH: Record<string, readonly string[]> = {
  [HTTP_FEDERATION_PATHS.request]: [CONNECT_MESSAGE.request],
  [HTTP_FEDERATION_PATHS.accepted]: [CONNECT_MESSAGE.accept],
  [HTTP_FEDERATION_PATHS.declined]: [CONNECT_MESSAGE.decline],
  [HTTP_FEDERATION_PATHS.disconnect]: [CONNECT_MESSAGE.disconnect],
}
const HANDSHAKE_TYPES = new Set(Object.values(TYPES_OF_PATH).flat())

/** The path an envelope of `type` is posted to. */
export function httpPathOf(type: string): HttpFederationPath {
  for (const [path, types] of Object.entries(TYPES_OF_PATH)) {
    if (types.includes(type)) return path as HttpFederationPath
  }
  return HTTP_FEDERATION_PATHS.send
}

/** Largest body of a federation POST (and of a reply read back): the envelope limit. */
export const HTTP_FEDERATION_MAX_BYTES = ENVELOPE_LIMITS.maxBytes

const DID_KEY_RE = /^did:key:z[1-9A-HJ-NP-Za-km-z]{1,126}$/
const HTTP_BASE_RE = /^https?:\/\/[\x21-\x7e]{1,500}$/

/** A peer's HTTP base as given (`http` of its connect.request), normalised; undefined when it is not one. */
export function httpBaseOf(value: unknown): string | undefined {
  if (typeof value !== 'string' || !HTTP_BASE_RE.test(value)) return undefined
  try {
    const url = new URL(value)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
    if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return undefined
    return url.toString().replace(/\/+$/, '')
  } catch {
    return undefined
  }
}

/**
 * Where each peer mesh takes federation POSTs, kept in the `peers` sublevel beside the
 * peer records (`http/1/<did>` → {http, learnedAt}); a peer is filed under every did it
 * is known by (identity and key).
 */
export class HttpPeerBook {
  readonly #sub: Sublevel<unknown>
  readonly #now: () => number

  readonly #fallback: ((did: string) => Promise<string | undefined>) | undefined

  /**
   * `fallback`: where else a peer's HTTP base may be known — its peer record's `http`,
   * taken from its manifest when it was reached by URL (SPEC §10).
   */
  constructor(
    store: MeshStore,
    now: () => number = Date.now,
    fallback?: (did: string) => Promise<string | undefined>,
  ) {
    this.#sub = store.sublevel('peers')
    this.#now = now
    this.#fallback = fallback
  }

  async get(did: string): Promise<string | undefined> {
    return (await this.#stored(did)) ?? httpBaseOf(await this.#fallback?.(did))
  }

  async #stored(did: string): Promise<string | undefined> {
    const value = (await this.#sub.get(`http/1/${did}`)) as { http?: unknown } | undefined
    return httpBaseOf(value?.http)
  }

  /** Remembers `did`'s HTTP base; false (nothing stored) when it is not an http(s) URL. */
  async learn(did: string, http: string): Promise<boolean> {
    const base = httpBaseOf(http)
    if (base === undefined || !DID_KEY_RE.test(did)) return false
    if ((await this.#stored(did)) === base) return true
    await this.#sub.put(`http/1/${did}`, { http: base, learnedAt: new Date(this.#now()).toISOString() })
    return true
  }
}

/** What an incoming POST is, read before anything is verified (to route it and to name its sender). */
export interface PeekedEnvelope {
  origin: string
  type: string
  protocol: string
  body: Record<string, unknown>
}

/**
 * Reads `origin`, `type`, `protocol` and `body` from an unverified body; MESH_BAD_REQUEST
 * when it is not an envelope at all (no signed reply can be addressed then).
 */
export function peekEnvelope(bytes: Uint8Array): PeekedEnvelope {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch {
    throw new BadRequestError('the body is not JSON')
  }
  const v = value as Partial<Record<keyof PeekedEnvelope, unknown>> | null
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new BadRequestError('the body is not an envelope')
  }
  if (typeof v.origin !== 'string' || !DID_KEY_RE.test(v.origin)) {
    throw new BadRequestError('the envelope has no did:key origin')
  }
  if (typeof v.type !== 'string' || typeof v.protocol !== 'string') {
    throw new BadRequestError('the envelope has no type or protocol')
  }
  const body = typeof v.body === 'object' && v.body !== null ? (v.body as Record<string, unknown>) : {}
  return { origin: v.origin, type: v.type, protocol: v.protocol, body }
}

export interface HttpFederationComponents {
  /** The libp2p stream's handler, given the envelope's origin as the peer: returns the signed reply. */
  receive: (bytes: Uint8Array, remoteDid: string) => Promise<Uint8Array>
  /** Other protocols over `/federation/send` (room frames): by protocol id. */
  protocols?: Record<string, (bytes: Uint8Array, peeked: PeekedEnvelope) => Promise<Uint8Array>>
  peers: HttpPeerBook
  logger?: Logger
}

/** The receiving side of the HTTP face: one POST in, one signed reply envelope out. */
export class HttpFederation {
  readonly #c: HttpFederationComponents
  readonly #handlers = new Map<string, (bytes: Uint8Array, peeked: PeekedEnvelope) => Promise<Uint8Array>>()
  readonly #log: Logger

  constructor(components: HttpFederationComponents) {
    this.#c = components
    this.#log = components.logger ?? silentLogger()
  }

  get peers(): HttpPeerBook {
    return this.#c.peers
  }

  /** Takes envelopes of `protocol` on `/federation/send` (invocations over HTTP: node/http-invoke.ts). */
  handle(
    protocol: string,
    handler: (bytes: Uint8Array, peeked: PeekedEnvelope) => Promise<Uint8Array>,
  ): void {
    this.#handlers.set(protocol, handler)
  }

  /**
   * Handles the body posted to `path`. Throws (a plain HTTP error, no signed reply) only
   * when the body names no origin to answer, or is posted to the wrong path; every other
   * refusal is the signed `connect.error` the libp2p handler answers.
   */
  async receive(path: string, bytes: Uint8Array): Promise<Uint8Array> {
    const peeked = peekEnvelope(bytes)
    const expected = TYPES_OF_PATH[path]
    if (expected !== undefined ? !expected.includes(peeked.type) : HANDSHAKE_TYPES.has(peeked.type)) {
      throw new BadRequestError(`a ${peeked.type} envelope is not posted to ${path}`, {
        type: peeked.type,
        path,
        expected: httpPathOf(peeked.type),
      })
    }
    const other = this.#c.protocols?.[peeked.protocol] ?? this.#handlers.get(peeked.protocol)
    if (other !== undefined) return other(bytes, peeked)
    const reply = await this.#c.receive(bytes, peeked.origin)
    if (peeked.type === CONNECT_MESSAGE.request) await this.#learn(peeked, reply)
    return reply
  }

  /** An applied request (answered with an ack) tells where its sender takes our answer. */
  async #learn(peeked: PeekedEnvelope, reply: Uint8Array): Promise<void> {
    const http = httpBaseOf(peeked.body.http)
    if (http === undefined) return
    try {
      const answer = JSON.parse(Buffer.from(reply).toString('utf8')) as { type?: unknown }
      if (answer.type !== CONNECT_MESSAGE.ack) return
      await this.#c.peers.learn(peeked.origin, http)
    } catch (err) {
      this.#log.warn(
        { event: 'federation.http.learn_failed', peer: peeked.origin, err },
        'peer http not kept',
      )
    }
  }
}

export interface HttpRouteInit {
  peers: Pick<HttpPeerBook, 'get'>
  /** Consecutive libp2p failures (other than "no address") before HTTP is tried; default 2. */
  failuresBeforeHttp?: number
  /** After a fallback, libp2p is tried again first once this long has passed; default 30 000 ms. */
  libp2pRetryMs?: number
  /** One HTTP attempt at most this long; default 10 000 ms. */
  timeoutMs?: number
  now?: () => number
  logger?: Logger
  fetch?: typeof fetch
}

export interface HttpRouteSend {
  /** The peer's identity and its current key (its HTTP base may be filed under either). */
  peer: string
  key: string
  type: string
  bytes: Uint8Array
  /** Whether libp2p holds a connection to the peer now (then libp2p is used). */
  connected: () => boolean
  /** One libp2p attempt: dial and exchange. */
  viaLibp2p: () => Promise<Uint8Array>
}

/** libp2p failures after which the peer may be reached over HTTP instead. */
const UNREACHABLE = new Set(['no-address', 'connect-refused', 'timeout', 'protocol-version', 'network'])

/**
 * The outbox's transport choice: libp2p → HTTP. A peer with an HTTP base is posted to
 * when libp2p has no address for it, or failed `failuresBeforeHttp` times in a row; it
 * stays on HTTP until libp2p connects (`connected`) or `libp2pRetryMs` passed, when
 * libp2p is tried first again.
 */
export class HttpRoute {
  readonly #init: HttpRouteInit
  readonly #threshold: number
  readonly #retryMs: number
  readonly #now: () => number
  readonly #log: Logger
  readonly #state = new Map<string, { failures: number; httpSince: number | undefined }>()

  constructor(init: HttpRouteInit) {
    this.#init = init
    this.#threshold = init.failuresBeforeHttp ?? 2
    this.#retryMs = init.libp2pRetryMs ?? 30_000
    this.#now = init.now ?? Date.now
    this.#log = init.logger ?? silentLogger()
  }

  /** Which transport the peer's messages take now. */
  via(peer: string): 'libp2p' | 'http' {
    const since = this.#state.get(peer)?.httpSince
    return since !== undefined && this.#now() - since < this.#retryMs ? 'http' : 'libp2p'
  }

  /** Sends one envelope, returning the reply's bytes; throws a DeliveryError. */
  async send(input: HttpRouteSend, options: AbortOptions = {}): Promise<Uint8Array> {
    const base = (await this.#init.peers.get(input.peer)) ?? (await this.#init.peers.get(input.key))
    if (base === undefined) return input.viaLibp2p()
    let state = this.#state.get(input.peer)
    if (state === undefined) {
      state = { failures: 0, httpSince: undefined }
      this.#state.set(input.peer, state)
    }
    if (this.via(input.peer) === 'http' && !input.connected()) {
      try {
        return await this.post(base, input.type, input.bytes, options)
      } catch (err) {
        if (options.signal?.aborted === true) throw err
        this.#log.debug({ event: 'federation.http.failed', peer: input.peer, err }, 'HTTP send failed')
      }
    }
    try {
      const reply = await input.viaLibp2p()
      if (state.httpSince !== undefined) {
        this.#log.info(
          { event: 'federation.http.back_to_libp2p', peer: input.peer },
          'peer reached over libp2p',
        )
      }
      state.failures = 0
      state.httpSince = undefined
      return reply
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      const failure = classifyDeliveryError(err)
      if (!UNREACHABLE.has(failure.kind)) throw failure
      state.failures++
      if (failure.kind !== 'no-address' && state.failures < this.#threshold) throw failure
      if (state.httpSince === undefined) {
        this.#log.info(
          { event: 'federation.http.fallback', peer: input.peer, kind: failure.kind, http: base },
          'libp2p cannot reach the peer: sending over HTTP',
        )
      }
      state.httpSince = this.#now()
      return this.post(base, input.type, input.bytes, options)
    }
  }

  /**
   * Whether the peer's HTTP face answers at all (any status of a GET of its base): the
   * reachability probe's answer for a peer libp2p cannot ping. False without a base.
   */
  async reachable(peer: string, key: string, options: AbortOptions = {}): Promise<boolean> {
    const base = (await this.#init.peers.get(peer)) ?? (await this.#init.peers.get(key))
    if (base === undefined) return false
    try {
      const res = await (this.#init.fetch ?? fetch)(`${base}${HTTP_FEDERATION_PATHS.send}`, {
        method: 'GET',
        signal: AbortSignal.any([
          AbortSignal.timeout(this.#init.timeoutMs ?? 10_000),
          ...(options.signal !== undefined ? [options.signal] : []),
        ]),
        redirect: 'error',
      })
      await res.body?.cancel().catch(() => {})
      return true
    } catch {
      return false
    }
  }

  /** POSTs one envelope to `base` and returns the reply body; a DeliveryError otherwise. */
  async post(
    base: string,
    type: string,
    bytes: Uint8Array,
    options: AbortOptions & { maxBytes?: number } = {},
  ): Promise<Uint8Array> {
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.#init.timeoutMs ?? 10_000),
      ...(options.signal !== undefined ? [options.signal] : []),
    ])
    let res: Response
    try {
      res = await (this.#init.fetch ?? fetch)(`${base}${httpPathOf(type)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: bytes,
        signal,
        redirect: 'error',
      })
    } catch (err) {
      const e = classifyDeliveryError(err)
      throw new DeliveryError(e.kind, e.code, `HTTP: ${e.message}`, { ...e.details, via: 'http' })
    }
    const body = await readBounded(res, options.maxBytes ?? HTTP_FEDERATION_MAX_BYTES)
    if (isEnvelopeJson(body)) return body
    // A plain error (no signed reply): the peer could not even read the envelope.
    const error = plainError(body)
    if (res.status === 404 || res.status === 405) {
      throw new DeliveryError(
        'protocol-version',
        'MESH_PROTOCOL_VERSION',
        'the peer has no HTTP federation',
        {
          via: 'http',
          status: res.status,
        },
      )
    }
    throw new DeliveryError(
      'remote-refused',
      error?.code ?? 'MESH_UNAVAILABLE',
      error?.message ?? `HTTP ${res.status}`,
      { via: 'http', status: res.status, ...(error?.details ?? {}) },
    )
  }
}

async function readBounded(res: Response, max: number): Promise<Uint8Array> {
  const reader = res.body?.getReader()
  if (reader === undefined) return new Uint8Array()
  const parts: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > max) {
      await reader.cancel().catch(() => {})
      throw new DeliveryError('bad-reply', 'MESH_TOO_LARGE', 'the HTTP reply is too large', { via: 'http' })
    }
    parts.push(value)
  }
  return Buffer.concat(parts)
}

function isEnvelopeJson(bytes: Uint8Array): boolean {
  try {
    const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>
    return typeof value === 'object' && value !== null && typeof value.signature === 'string'
  } catch {
    return false
  }
}

function plainError(
  bytes: Uint8Array,
): { code: MeshErrorCode; message: string; details: Record<string, unknown> } | undefined {
  try {
    const { error } = JSON.parse(Buffer.from(bytes).toString('utf8')) as {
      error?: { code?: unknown; message?: unknown; details?: unknown }
    }
    if (typeof error?.code !== 'string' || !/^MESH_[A-Z_]{1,40}$/.test(error.code)) return undefined
    return {
      code: error.code as MeshErrorCode,
      message: typeof error.message === 'string' ? error.message.slice(0, 1024) : error.code,
      details:
        typeof error.details === 'object' && error.details !== null
          ? (error.details as Record<string, unknown>)
          : {},
    }
  } catch {
    return undefined
  }
}
