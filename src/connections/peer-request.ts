import type { Connection, Stream } from '@libp2p/interface'
import { RefusalThrottle, type RejectedLog } from '../audit/index.ts'
import { ERROR_STATUS, MeshError, type MeshErrorCode } from '../errors.ts'
import { didFromPeerId, peerIdFromDid } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import { addDialAddresses, type MeshLibp2p } from '../p2p/index.ts'
import { lazyValidator } from '../schema.ts'
import { classifyDeliveryError, exchange } from './connect-protocol.ts'
import type { PeerView } from './connection-book.ts'
import type { PolicyService } from './policy.ts'
import { RateLimiter } from './rate-limiter.ts'

/**
 * What the request/answer protocols to connected peers share (`/mesh/invoke/1.0.0`,
 * `/mesh/audit/1.0.0`): one stream per request, a JSON request frame out, one answer
 * frame back, `{"ok": …}` or `{"error": {code, message, details}}`; who may ask (an
 * accepted connection, its current key, within its rate), and the record of refusals.
 */

export type PeerAnswer =
  | { ok: unknown }
  | { error: { code: string; message: string; details: Record<string, unknown> } }

const answerSchema = {
  oneOf: [
    { type: 'object', additionalProperties: false, required: ['ok'], properties: { ok: {} } },
    {
      type: 'object',
      additionalProperties: false,
      required: ['error'],
      properties: {
        error: {
          type: 'object',
          additionalProperties: false,
          required: ['code', 'message', 'details'],
          properties: {
            code: { type: 'string', pattern: '^MESH_[A-Z_]{1,40}$' },
            message: { type: 'string', maxLength: 1024 },
            details: { type: 'object' },
          },
        },
      },
    },
  ],
} as const
const validAnswer = lazyValidator<PeerAnswer>(answerSchema)

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value))
}

export function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes))
  } catch {
    return undefined
  }
}

/** `err` as an answer frame's value (an unexpected error is MESH_INTERNAL, its message kept here). */
export function errorAnswer(err: unknown, internal = 'the request failed on the peer'): PeerAnswer {
  const e = err instanceof MeshError ? err : new MeshError('MESH_INTERNAL', internal)
  return { error: { code: e.code, message: e.message, details: e.details } }
}

/** Whether a peer's connection lets requests through. */
export function isConnected(peer: PeerView): boolean {
  return peer.state === 'accepted' || peer.state === 'degraded'
}

/** The connected peer `mesh` (its identity or one of its keys); MESH_NOT_CONNECTED otherwise. */
export async function connectedPeer(peers: () => Promise<PeerView[]>, mesh: string): Promise<PeerView> {
  const peer = (await peers()).find((p) => p.did === mesh || p.keys.includes(mesh))
  if (peer === undefined || !isConnected(peer)) {
    throw new MeshError('MESH_NOT_CONNECTED', 'no accepted connection with this mesh', {
      mesh,
      state: peer?.state ?? 'none',
    })
  }
  return peer
}

/**
 * Sends `request` to `peer` over `protocol` and returns the `ok` of its answer. Throws the
 * peer's refusal as a MeshError with its code (plus `refusedBy`; a code this node does
 * not know is MESH_FORBIDDEN with `peerCode`), or a local one: MESH_UNAVAILABLE
 * (unreachable, timed out, an answer that is not one), MESH_PROTOCOL_VERSION.
 */
export async function requestPeer(
  libp2p: MeshLibp2p,
  peer: PeerView,
  protocol: string,
  request: unknown,
  options: { maxBytes: number; signal: AbortSignal },
): Promise<unknown> {
  let reply: Uint8Array
  try {
    const peerId = peerIdFromDid(peer.keys.at(-1) ?? peer.did)
    if (
      libp2p.getConnections(peerId).length === 0 &&
      !(await addDialAddresses(libp2p.peerStore, peerId, peer.multiaddrs))
    ) {
      throw new MeshError('MESH_UNAVAILABLE', 'no address known for the peer', { reason: 'no-address' })
    }
    reply = await exchange(libp2p, peerId, encodeJson(request), { protocol, ...options })
  } catch (err) {
    if (err instanceof MeshError)
      throw new MeshError(err.code, err.message, { ...err.details, mesh: peer.did })
    const e = classifyDeliveryError(err)
    throw new MeshError(e.code, `the peer mesh cannot be reached: ${e.message}`, {
      ...e.details,
      reason: e.kind,
      mesh: peer.did,
    })
  }
  return answerValue(parseJson(reply), peer.did)
}

/**
 * A protocol's sender falling back to the peer's HTTP face (SPEC §12, http-requests.ts):
 * `viaLibp2p` first, the request posted over HTTP when libp2p cannot reach the peer.
 */
export interface RequestsOverHttp {
  send(
    peer: PeerView,
    request: unknown,
    viaLibp2p: () => Promise<unknown>,
    options: { signal: AbortSignal; maxAnswerBytes: number },
  ): Promise<unknown>
}

/**
 * One request to a connected peer over `protocol`, within `timeoutMs` (and `signal`): over
 * libp2p, or, given `http` (SPEC §12), libp2p first and the peer's HTTP face when libp2p
 * cannot reach it. What each protocol's sender does.
 */
export function askPeer(
  libp2p: MeshLibp2p,
  http: RequestsOverHttp | undefined,
  peer: PeerView,
  protocol: string,
  request: unknown,
  options: { timeoutMs: number; maxAnswerBytes: number; signal?: AbortSignal | undefined },
): Promise<unknown> {
  const signal = AbortSignal.any([
    AbortSignal.timeout(options.timeoutMs),
    ...(options.signal ? [options.signal] : []),
  ])
  const viaLibp2p = () =>
    requestPeer(libp2p, peer, protocol, request, { maxBytes: options.maxAnswerBytes, signal })
  return http !== undefined
    ? http.send(peer, request, viaLibp2p, { signal, maxAnswerBytes: options.maxAnswerBytes })
    : viaLibp2p()
}

/**
 * The `ok` of a peer's answer (`{ok}` or `{error}`), or its refusal thrown as a MeshError
 * with its code (plus `refusedBy`; a code this node does not know is MESH_FORBIDDEN with
 * `peerCode`); MESH_UNAVAILABLE when it is no answer. Whatever carried it (a libp2p
 * stream, an HTTP reply envelope).
 */
export function answerValue(answer: unknown, mesh: string): unknown {
  if (!validAnswer(answer)) {
    throw new MeshError('MESH_UNAVAILABLE', 'the peer mesh sent an answer that is not one', {
      reason: 'bad-reply',
      mesh: mesh,
    })
  }
  if ('ok' in answer) return answer.ok
  const { code, message, details } = answer.error
  if (code in ERROR_STATUS) {
    throw new MeshError(code as MeshErrorCode, message, { ...details, refusedBy: mesh })
  }
  // A code this node does not know: refused all the same, the peer's code kept.
  throw new MeshError('MESH_FORBIDDEN', message, { ...details, peerCode: code, refusedBy: mesh })
}

/**
 * The peer behind an inbound `connection`, and why it may not ask now (if it may not):
 * not connected, a key it rotated away from, refused by the federation `policy` (when
 * given: a denied mesh, e.g. one caught equivocating), over its rate.
 */
export async function admitPeer(
  connection: Connection,
  peers: () => Promise<PeerView[]>,
  limiter: RateLimiter,
  policy?: Pick<PolicyService, 'evaluate'>,
): Promise<{ peer: string; view?: PeerView; error?: MeshError }> {
  let key: string
  try {
    key = didFromPeerId(connection.remotePeer)
  } catch {
    return { peer: 'unknown', error: new MeshError('MESH_NOT_CONNECTED', 'not a mesh key') }
  }
  return admitKey(key, peers, limiter, policy)
}

/**
 * `admitPeer` for a peer known by its mesh key `key` (the libp2p connection's PeerId, or
 * the verified origin of an envelope posted over HTTP).
 */
export async function admitKey(
  key: string,
  peers: () => Promise<PeerView[]>,
  limiter: RateLimiter,
  policy?: Pick<PolicyService, 'evaluate'>,
): Promise<{ peer: string; view?: PeerView; error?: MeshError }> {
  const view = (await peers()).find((p) => p.did === key || p.keys.includes(key))
  if (view === undefined || !isConnected(view)) {
    return {
      peer: key,
      // A paused connection (issue 13) says so: `state: 'paused'`.
      error: new MeshError('MESH_NOT_CONNECTED', 'no accepted connection with this mesh', {
        state: view?.state ?? 'none',
      }),
    }
  }
  if ((view.keys.at(-1) ?? view.did) !== key) {
    return {
      peer: view.did,
      view,
      error: new MeshError('MESH_SIGNATURE_MISMATCH', 'a key this mesh knows the peer rotated away from'),
    }
  }
  const decision = await policy?.evaluate(view.did)
  if (decision !== undefined && !decision.ok) return { peer: view.did, view, error: decision.error }
  try {
    limiter.consume(view.did)
  } catch (err) {
    return { peer: view.did, view, error: err as MeshError }
  }
  return { peer: view.did, view }
}

/**
 * Refusals of peers' requests of one kind (`invoke.request`, `audit.request`): recorded in
 * the rejected log at most once per peer and code a second, and — for a connected peer
 * that misbehaves, not a stranger — told to the reputation hook.
 */
export class PeerRefusals {
  readonly #throttle = new RefusalThrottle({ intervalMs: 1000 })
  readonly #kind: string
  readonly #rejected: Pick<RejectedLog, 'record'> | undefined
  readonly #onPeerRefused: ((peer: string, reason: string) => void) | undefined
  readonly #log: Logger

  constructor(init: {
    kind: string
    rejected?: Pick<RejectedLog, 'record'> | undefined
    onPeerRefused?: ((peer: string, reason: string) => void) | undefined
    logger: Logger
  }) {
    this.#kind = init.kind
    this.#rejected = init.rejected
    this.#onPeerRefused = init.onPeerRefused
    this.#log = init.logger
  }

  /** Records `err` against `peer`; resolves once written (never rejects: a failed write is logged). */
  async record(peer: string, err: MeshError): Promise<void> {
    const admitted = this.#throttle.admit(`${peer} ${err.code}`)
    if (admitted === undefined) return
    // A stranger has no standing here to lose; a connected peer that misbehaves does.
    if (err.code !== 'MESH_NOT_CONNECTED' && err.code !== 'MESH_SIGNATURE_MISMATCH') {
      this.#onPeerRefused?.(peer, `${this.#kind} ${err.code}`)
    }
    await this.#rejected
      ?.record({
        peer,
        kind: this.#kind,
        code: err.code,
        reason: err.message,
        details: { suppressedSinceLast: admitted.suppressedSinceLast },
      })
      .catch((e: unknown) =>
        this.#log.error({ event: `${this.#kind}.rejected_log_failed`, err: e }, 'recording a refusal failed'),
      )
  }
}

/** A token bucket per key: `n` at once, refilled evenly over a minute. */
export function perMinute(n: number): RateLimiter {
  return new RateLimiter({ capacity: Math.max(1, n), refillPerSecond: n / 60 })
}

/**
 * A protocol's handler on the libp2p host of the day (a key rotation replaces the host:
 * stop, then start on the new one): the streams it is serving are cut when it stops.
 */
export class ProtocolHandler {
  readonly #protocol: string
  readonly #libp2p: () => MeshLibp2p
  readonly #maxInboundStreams: number
  readonly #serve: (stream: Stream, connection: Connection) => Promise<void>
  readonly #served = new Set<Stream>()
  #host: MeshLibp2p | undefined

  constructor(init: {
    protocol: string
    libp2p: () => MeshLibp2p
    maxInboundStreams: number
    serve: (stream: Stream, connection: Connection) => Promise<void>
  }) {
    this.#protocol = init.protocol
    this.#libp2p = init.libp2p
    this.#maxInboundStreams = init.maxInboundStreams
    this.#serve = init.serve
  }

  get running(): boolean {
    return this.#host !== undefined
  }

  async start(): Promise<void> {
    if (this.#host !== undefined) return
    const host = this.#libp2p()
    await host.handle(this.#protocol, (stream, connection) => this.serve(stream, connection), {
      maxInboundStreams: this.#maxInboundStreams,
      maxOutboundStreams: 16,
      runOnLimitedConnection: true, // reachability (SPEC §10)
    })
    this.#host = host
  }

  async stop(): Promise<void> {
    const host = this.#host
    if (host === undefined) return
    this.#host = undefined
    await host.unhandle(this.#protocol).catch(() => {})
    for (const stream of this.#served) stream.abort(new Error(`${this.#protocol} stopped`))
    this.#served.clear()
  }

  /** Serves one stream, tracked until it ends (what the host calls; a host that routes streams itself may too). */
  async serve(stream: Stream, connection: Connection): Promise<void> {
    this.#served.add(stream)
    try {
      await this.#serve(stream, connection)
    } finally {
      this.#served.delete(stream)
    }
  }
}

/** What a request/answer protocol takes of its components to serve peers and record their refusals. */
export interface PeerProtocolComponents {
  /** A getter: a key rotation replaces the host. */
  libp2p: () => MeshLibp2p
  rejected?: Pick<RejectedLog, 'record'> | undefined
  onPeerRefused?: ((peer: string, reason: string) => void) | undefined
  logger: Logger
}

/**
 * A request/answer protocol's parts: its logger (`component`), the record of refused
 * requests of `kind`, and its handler of `protocol` serving each stream with `serve`.
 */
export function peerProtocolParts(
  components: PeerProtocolComponents,
  init: {
    protocol: string
    kind: string
    component: string
    maxInboundStreams: number
    serve: (stream: Stream, connection: Connection) => Promise<void>
  },
): { log: Logger; refusals: PeerRefusals; handler: ProtocolHandler } {
  const log = components.logger.child({ component: init.component })
  const refusals = new PeerRefusals({
    kind: init.kind,
    rejected: components.rejected,
    onPeerRefused: components.onPeerRefused,
    logger: log,
  })
  const handler = new ProtocolHandler({
    protocol: init.protocol,
    libp2p: components.libp2p,
    maxInboundStreams: init.maxInboundStreams,
    serve: init.serve,
  })
  return { log, refusals, handler }
}
