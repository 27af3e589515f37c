import type { AbortOptions, Connection, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { RefusalThrottle, type RejectedLog } from '../audit/index.ts'
import { ERROR_STATUS, MeshError, type MeshErrorCode } from '../errors.ts'
import { didFromPeerId, peerIdFromDid } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import { addDialAddresses, type MeshLibp2p } from '../p2p/index.ts'
import { lazyValidator } from '../schema.ts'
import { classifyDeliveryError, exchange } from './connect-protocol.ts'
import type { PeerView } from './connection-book.ts'
import { RateLimiter } from './rate-limiter.ts'

/**
 * `/mesh/invoke/1.0.0` — an invocation carried to a connected peer mesh by this node,
 * so that a member (an agent, a human) reaches every connected mesh through its own
 * node and needs no HTTP route to it (SPEC §8).
 *
 * One stream per invocation, varint length-prefixed UTF-8 JSON frames:
 *
 * ```
 * sender → receiver   lp({"ucan": "<base64url invocation, ≤ 16 KiB>"})
 * receiver → sender   lp({"ok": <what POST /api/invoke answers>})
 *                  or lp({"error": {"code": "MESH_…", "message": "…", "details": {…}}})
 * ```
 *
 * The receiver answers only a peer with an accepted connection whose current key is
 * the stream's remote PeerId (a stranger, or a key the peer rotated away from, gets
 * `MESH_NOT_CONNECTED` before anything is read), at most `requestsPerMinute` a peer
 * (`MESH_RATE_LIMITED`, also before anything is read), at most `maxInboundStreams` at
 * once per connection (libp2p resets the rest). A request that does not arrive within
 * `readTimeoutMs`, or is longer than MAX_REQUEST_BYTES, aborts the stream; a malformed
 * one is answered `MESH_BAD_REQUEST`. The invocation then runs exactly as
 * `POST /api/invoke` runs it (`invoke`), within `timeoutMs`.
 */
export const MESH_INVOKE_PROTOCOL = '/mesh/invoke/1.0.0'

/** The request frame's limit: the UCAN cap (16 KiB of base64url) and its JSON wrapper. */
export const MAX_REQUEST_BYTES = 16 * 1024 + 64

export interface InvokeProtocolComponents {
  /** A getter: a key rotation replaces the host. */
  libp2p: () => MeshLibp2p
  /** The peer meshes and the state of their connection (ConnectionService.peers). */
  peers: () => Promise<PeerView[]>
  /** Runs an invocation exactly as `POST /api/invoke` does; throws a MeshError to refuse. */
  invoke: (request: { ucan: string }, options: { signal: AbortSignal }) => Promise<unknown>
  /** Where refused streams are recorded (throttled per peer and code). */
  rejected?: Pick<RejectedLog, 'record'>
  /**
   * Reputation hook: a peer mesh with an accepted connection broke the protocol (a
   * malformed or oversized request, a flood); throttled like the rejected log. Must not throw.
   */
  onPeerRefused?: (peer: string, reason: string) => void
  logger: Logger
}

export interface InvokeProtocolInit {
  /** Inbound streams of this protocol open at once per connection; default 4. */
  maxInboundStreams?: number
  /** Invocations a peer may send per minute (a token bucket, burst the same); default 60. */
  requestsPerMinute?: number
  /** The request must arrive within this; default 5 000 ms. */
  readTimeoutMs?: number
  /** The invocation must be answered within this (receiver) / the whole exchange (sender); default 15 000 ms. */
  timeoutMs?: number
  /** Largest answer the sender reads; default 256 KiB. */
  maxAnswerBytes?: number
  /**
   * Invocations one member may send per minute (so that one member cannot spend the
   * budget the peer gives this whole mesh); default 30.
   */
  sendsPerMinute?: number
}

export interface SendOptions extends AbortOptions {
  /** The invocation's audience, when the caller decoded it: refused here unless it names the peer. */
  audience?: string
  /** The member sending it, charged against `sendsPerMinute`. */
  sender?: string
}

const requestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['ucan'],
  properties: { ucan: { type: 'string', minLength: 1, maxLength: 16 * 1024, pattern: '^[A-Za-z0-9_-]+$' } },
} as const

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

const validRequest = lazyValidator(requestSchema)
const validAnswer = lazyValidator(answerSchema)

type Answer = { ok: unknown } | { error: { code: string; message: string; details: Record<string, unknown> } }

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

function encode(answer: Answer): Uint8Array {
  return encoder.encode(JSON.stringify(answer))
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes))
  } catch {
    return undefined
  }
}

function errorAnswer(err: unknown): Answer {
  const e =
    err instanceof MeshError ? err : new MeshError('MESH_INTERNAL', 'the invocation failed on the peer')
  return { error: { code: e.code, message: e.message, details: e.details } }
}

/** A token bucket per key: `n` at once, refilled evenly over a minute. */
function perMinute(n: number): RateLimiter {
  return new RateLimiter({ capacity: Math.max(1, n), refillPerSecond: n / 60 })
}

/** Whether a peer's connection lets invocations through. */
function connected(peer: PeerView): boolean {
  return peer.state === 'accepted' || peer.state === 'degraded'
}

/**
 * Both halves of `/mesh/invoke/1.0.0`: `send` (the sender, behind
 * `POST /api/outbound/invoke`) and the handler that answers peers (started with `start`).
 */
export class InvokeProtocol {
  readonly #c: InvokeProtocolComponents
  readonly #init: Required<InvokeProtocolInit>
  readonly #limiter: RateLimiter
  readonly #senders: RateLimiter
  readonly #throttle = new RefusalThrottle({ intervalMs: 1000 })
  readonly #served = new Set<Stream>()
  readonly #log: Logger
  #host: MeshLibp2p | undefined

  constructor(components: InvokeProtocolComponents, init: InvokeProtocolInit = {}) {
    this.#c = components
    this.#init = {
      maxInboundStreams: init.maxInboundStreams ?? 4,
      requestsPerMinute: init.requestsPerMinute ?? 60,
      readTimeoutMs: init.readTimeoutMs ?? 5_000,
      timeoutMs: init.timeoutMs ?? 15_000,
      maxAnswerBytes: init.maxAnswerBytes ?? 256 * 1024,
      sendsPerMinute: init.sendsPerMinute ?? 30,
    }
    this.#limiter = perMinute(this.#init.requestsPerMinute)
    this.#senders = perMinute(this.#init.sendsPerMinute)
    this.#log = components.logger.child({ component: 'invoke-protocol' })
  }

  async start(): Promise<void> {
    if (this.#host !== undefined) return
    const host = this.#c.libp2p()
    await host.handle(MESH_INVOKE_PROTOCOL, (stream, connection) => this.#serve(stream, connection), {
      maxInboundStreams: this.#init.maxInboundStreams,
      maxOutboundStreams: 16,
    })
    this.#host = host
  }

  async stop(): Promise<void> {
    const host = this.#host
    if (host === undefined) return
    this.#host = undefined
    await host.unhandle(MESH_INVOKE_PROTOCOL).catch(() => {})
    for (const stream of this.#served) stream.abort(new Error('invoke protocol stopped'))
    this.#served.clear()
  }

  /**
   * Sends `ucan` to the connected peer mesh `mesh` (its identity or one of its keys) and
   * returns what its `POST /api/invoke` would answer. Throws the peer's refusal as a
   * MeshError with its code and details (plus `refusedBy`: the peer), or a local one:
   * MESH_NOT_CONNECTED (no accepted connection), MESH_UNAVAILABLE (unreachable, timed
   * out, bad answer), MESH_PROTOCOL_VERSION (the peer does not speak the protocol).
   */
  async send(mesh: string, ucan: string, options: SendOptions = {}): Promise<unknown> {
    const peer = (await this.#c.peers()).find((p) => p.did === mesh || p.keys.includes(mesh))
    if (peer === undefined || !connected(peer)) {
      throw new MeshError('MESH_NOT_CONNECTED', 'no accepted connection with this mesh', {
        mesh,
        state: peer?.state ?? 'none',
      })
    }
    if (
      options.audience !== undefined &&
      options.audience !== peer.did &&
      !peer.keys.includes(options.audience)
    ) {
      throw new MeshError('MESH_UCAN_INVALID', 'the invocation is addressed to another mesh', {
        proof: 'ucan',
        reason: 'audience',
        audience: options.audience,
        mesh: peer.did,
      })
    }
    if (options.sender !== undefined) this.#senders.consume(options.sender)
    const libp2p = this.#c.libp2p()
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.#init.timeoutMs),
      ...(options.signal ? [options.signal] : []),
    ])
    let reply: Uint8Array
    try {
      const peerId = peerIdFromDid(peer.keys.at(-1) ?? peer.did)
      if (
        libp2p.getConnections(peerId).length === 0 &&
        !(await addDialAddresses(libp2p.peerStore, peerId, peer.multiaddrs))
      ) {
        throw new MeshError('MESH_UNAVAILABLE', 'no address known for the peer', { reason: 'no-address' })
      }
      reply = await exchange(libp2p, peerId, encoder.encode(JSON.stringify({ ucan })), {
        protocol: MESH_INVOKE_PROTOCOL,
        maxBytes: this.#init.maxAnswerBytes,
        signal,
      })
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
    const answer = parseJson(reply)
    if (!validAnswer(answer)) {
      throw new MeshError('MESH_UNAVAILABLE', 'the peer mesh sent an answer that is not one', {
        reason: 'bad-reply',
        mesh: peer.did,
      })
    }
    const parsed = answer as Answer
    if ('ok' in parsed) return parsed.ok
    const { code, message, details } = parsed.error
    if (code in ERROR_STATUS) {
      throw new MeshError(code as MeshErrorCode, message, { ...details, refusedBy: peer.did })
    }
    // A code this node does not know: refused all the same, the peer's code kept.
    throw new MeshError('MESH_FORBIDDEN', message, { ...details, peerCode: code, refusedBy: peer.did })
  }

  /** One invocation from a peer: who, how often, then the request, then the answer. */
  async #serve(stream: Stream, connection: Connection): Promise<void> {
    this.#served.add(stream)
    let peerDid = 'unknown'
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_REQUEST_BYTES })
      const refusal = await this.#admit(connection)
      peerDid = refusal.peer
      if (refusal.error !== undefined) {
        this.#refused(peerDid, refusal.error)
        await lp.write(encode(errorAnswer(refusal.error)), {
          signal: AbortSignal.timeout(this.#init.readTimeoutMs),
        })
        await stream.close()
        return
      }
      const bytes = (await lp.read({ signal: AbortSignal.timeout(this.#init.readTimeoutMs) })).subarray()
      const request = parseJson(bytes)
      let answer: Answer
      if (!validRequest(request)) {
        const err = new MeshError('MESH_BAD_REQUEST', 'an invoke request is {ucan}', {
          validation: validRequest.errors?.[0]?.message ?? 'not JSON',
        })
        this.#refused(peerDid, err)
        answer = errorAnswer(err)
      } else {
        try {
          const ok = await this.#c.invoke(
            { ucan: (request as { ucan: string }).ucan },
            { signal: AbortSignal.timeout(this.#init.timeoutMs) },
          )
          answer = { ok }
        } catch (err) {
          if (!(err instanceof MeshError)) {
            this.#log.error({ event: 'invoke.remote_failed', peer: peerDid, err }, 'invocation failed')
          }
          answer = errorAnswer(err)
        }
      }
      await lp.write(encode(answer), { signal: AbortSignal.timeout(this.#init.readTimeoutMs) })
      await stream.close()
    } catch (err) {
      // Too long, too slow, reset: nothing was run for a request that was not read whole.
      if ((err as Error).name === 'InvalidDataLengthError') {
        this.#refused(
          peerDid,
          new MeshError('MESH_TOO_LARGE', `an invoke request is at most ${MAX_REQUEST_BYTES} bytes`),
        )
      }
      this.#log.debug(
        { event: 'invoke.stream_cut', peer: peerDid, err: (err as Error).message },
        'invoke stream cut',
      )
      stream.abort(err as Error)
    } finally {
      this.#served.delete(stream)
    }
  }

  /** The peer behind `connection`, and why it may not invoke now (if it may not). */
  async #admit(connection: Connection): Promise<{ peer: string; error?: MeshError }> {
    let key: string
    try {
      key = didFromPeerId(connection.remotePeer)
    } catch {
      return { peer: 'unknown', error: new MeshError('MESH_NOT_CONNECTED', 'not a mesh key') }
    }
    const peer = (await this.#c.peers()).find((p) => p.did === key || p.keys.includes(key))
    if (peer === undefined || !connected(peer)) {
      return {
        peer: key,
        // A paused connection (issue 13) says so: `state: 'paused'`.
        error: new MeshError('MESH_NOT_CONNECTED', 'no accepted connection with this mesh', {
          state: peer?.state ?? 'none',
        }),
      }
    }
    if ((peer.keys.at(-1) ?? peer.did) !== key) {
      return {
        peer: peer.did,
        error: new MeshError('MESH_SIGNATURE_MISMATCH', 'a key this mesh knows the peer rotated away from'),
      }
    }
    try {
      this.#limiter.consume(peer.did)
    } catch (err) {
      return { peer: peer.did, error: err as MeshError }
    }
    return { peer: peer.did }
  }

  /** Records a refusal in the rejected log, at most one per peer and code a second. */
  #refused(peer: string, err: MeshError): void {
    const admitted = this.#throttle.admit(`${peer} ${err.code}`)
    if (admitted === undefined) return
    // A stranger has no standing here to lose; a connected peer that misbehaves does.
    if (err.code !== 'MESH_NOT_CONNECTED' && err.code !== 'MESH_SIGNATURE_MISMATCH') {
      this.#c.onPeerRefused?.(peer, `invoke.request ${err.code}`)
    }
    if (this.#c.rejected === undefined) return
    this.#c.rejected
      .record({
        peer,
        kind: 'invoke.request',
        code: err.code,
        reason: err.message,
        details: { suppressedSinceLast: admitted.suppressedSinceLast },
      })
      .catch((e: unknown) =>
        this.#log.error({ event: 'invoke.rejected_log_failed', err: e }, 'recording a refusal failed'),
      )
  }
}
