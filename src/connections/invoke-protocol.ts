import type { AbortOptions, Connection, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import type { RejectedLog } from '../audit/index.ts'
import { MeshError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { MeshLibp2p } from '../p2p/index.ts'
import { lazyValidator } from '../schema.ts'
import type { PeerView } from './connection-book.ts'
import {
  admitKey,
  admitPeer,
  askPeer,
  connectedPeer,
  encodeJson,
  errorAnswer,
  type PeerAnswer,
  type PeerRefusals,
  type ProtocolHandler,
  parseJson,
  peerProtocolParts,
  perMinute,
  type RequestsOverHttp,
} from './peer-request.ts'
import type { PolicyService } from './policy.ts'
import type { RateLimiter } from './rate-limiter.ts'

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
  /** The federation policy: a denied mesh (e.g. caught equivocating) is refused its own code. */
  policy?: Pick<PolicyService, 'evaluate'>
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

const validRequest = lazyValidator(requestSchema)

type Answer = PeerAnswer

/**
 * Both halves of `/mesh/invoke/1.0.0`: `send` (the sender, behind
 * `POST /api/outbound/invoke`) and the handler that answers peers (started with `start`).
 */
export class InvokeProtocol {
  readonly #c: InvokeProtocolComponents
  readonly #init: Required<InvokeProtocolInit>
  readonly #limiter: RateLimiter
  readonly #senders: RateLimiter
  readonly #refusals: PeerRefusals
  readonly #handler: ProtocolHandler
  readonly #log: Logger
  #http: RequestsOverHttp | undefined

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
    const parts = peerProtocolParts(components, {
      protocol: MESH_INVOKE_PROTOCOL,
      kind: 'invoke.request',
      component: 'invoke-protocol',
      maxInboundStreams: this.#init.maxInboundStreams,
      serve: (stream, connection) => this.#serve(stream, connection),
    })
    this.#log = parts.log
    this.#refusals = parts.refusals
    this.#handler = parts.handler
  }

  start(): Promise<void> {
    return this.#handler.start()
  }

  stop(): Promise<void> {
    return this.#handler.stop()
  }

  /**
   * Sends `ucan` to the connected peer mesh `mesh` (its identity or one of its keys) and
   * returns what its `POST /api/invoke` would answer. Throws the peer's refusal as a
   * MeshError with its code and details (plus `refusedBy`: the peer), or a local one:
   * MESH_NOT_CONNECTED (no accepted connection), MESH_UNAVAILABLE (unreachable, timed
   * out, bad answer), MESH_PROTOCOL_VERSION (the peer does not speak the protocol).
   */
  async send(mesh: string, ucan: string, options: SendOptions = {}): Promise<unknown> {
    const peer = await connectedPeer(this.#c.peers, mesh)
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
    return askPeer(
      this.#c.libp2p(),
      this.#http,
      peer,
      MESH_INVOKE_PROTOCOL,
      { ucan },
      {
        timeoutMs: this.#init.timeoutMs,
        maxAnswerBytes: this.#init.maxAnswerBytes,
        signal: options.signal,
      },
    )
  }

  /**
   * Carries invocations to a peer libp2p cannot reach over its HTTP face (SPEC §12,
   * http-invoke.ts); without it, libp2p only.
   */
  setHttp(http: RequestsOverHttp | undefined): void {
    this.#http = http
  }

  /**
   * Whether the peer mesh whose current key is `key` may ask now (an accepted connection,
   * that key, the policy, its rate); a refusal is recorded and returned. What the libp2p
   * handler checks before it reads a request, and the HTTP face once the envelope verified.
   */
  async admit(key: string): Promise<{ peer: string; error?: MeshError }> {
    const admission = await admitKey(key, this.#c.peers, this.#limiter, this.#c.policy)
    if (admission.error !== undefined) await this.#refused(admission.peer, admission.error)
    return admission
  }

  /** Runs one admitted peer's request (`{ucan}`) exactly as `POST /api/invoke` does; the answer frame. */
  async run({ peer }: { peer: string }, request: unknown): Promise<Answer> {
    if (!validRequest(request)) {
      const err = new MeshError('MESH_BAD_REQUEST', 'an invoke request is {ucan}', {
        validation: validRequest.errors?.[0]?.message ?? 'not JSON',
      })
      await this.#refused(peer, err)
      return errorAnswer(err)
    }
    try {
      const ok = await this.#c.invoke(
        { ucan: (request as { ucan: string }).ucan },
        { signal: AbortSignal.timeout(this.#init.timeoutMs) },
      )
      return { ok }
    } catch (err) {
      if (!(err instanceof MeshError)) {
        this.#log.error({ event: 'invoke.remote_failed', peer, err }, 'invocation failed')
      }
      return errorAnswer(err, 'the invocation failed on the peer')
    }
  }

  /** One invocation from a peer: who, how often, then the request, then the answer. */
  async #serve(stream: Stream, connection: Connection): Promise<void> {
    let peerDid = 'unknown'
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_REQUEST_BYTES })
      const refusal = await admitPeer(connection, this.#c.peers, this.#limiter, this.#c.policy)
      peerDid = refusal.peer
      if (refusal.error !== undefined) {
        await this.#refused(peerDid, refusal.error)
        await lp.write(encodeJson(errorAnswer(refusal.error)), {
          signal: AbortSignal.timeout(this.#init.readTimeoutMs),
        })
        await stream.close()
        return
      }
      const bytes = (await lp.read({ signal: AbortSignal.timeout(this.#init.readTimeoutMs) })).subarray()
      const answer = await this.run({ peer: peerDid }, parseJson(bytes))
      await lp.write(encodeJson(answer), { signal: AbortSignal.timeout(this.#init.readTimeoutMs) })
      await stream.close()
    } catch (err) {
      // Too long, too slow, reset: nothing was run for a request that was not read whole.
      stream.abort(err as Error)
      this.#log.debug(
        { event: 'invoke.stream_cut', peer: peerDid, err: (err as Error).message },
        'invoke stream cut',
      )
      if ((err as Error).name === 'InvalidDataLengthError') {
        await this.#refused(
          peerDid,
          new MeshError('MESH_TOO_LARGE', `an invoke request is at most ${MAX_REQUEST_BYTES} bytes`),
        )
      }
    }
  }

  /** Records a refusal in the rejected log, at most one per peer and code a second. */
  refused(peer: string, err: MeshError): Promise<void> {
    return this.#refused(peer, err)
  }

  #refused(peer: string, err: MeshError): Promise<void> {
    return this.#refusals.record(peer, err)
  }
}
