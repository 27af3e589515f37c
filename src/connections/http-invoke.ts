import { BadRequestError, MeshError, TooLargeError } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import { DeliveryError } from './connect-protocol.ts'
import type { PeerView } from './connection-book.ts'
import { createEnvelope, type Envelope, type EnvelopeVerifier, encodeEnvelope } from './envelope.ts'
import type { HttpRoute, PeekedEnvelope } from './http-federation.ts'
import type { InvokeOverHttp } from './invoke-protocol.ts'
import { answerValue, type PeerAnswer } from './peer-request.ts'

/**
 * `/mesh/invoke/1.0.0` over plain HTTP (SPEC §12): the invoke protocol's request frame
 * `{ucan}` as the body of a signed envelope posted to the peer's `/federation/send`, its
 * answer frame in the signed reply envelope:
 *
 * ```
 * sender → peer   envelope{type: invoke.request, protocol: /mesh/invoke/1.0.0, body: {ucan}}
 * peer → sender   envelope{type: invoke.answer, body: {inReplyTo, ok}}              (HTTP 200)
 *              or envelope{type: invoke.error,  body: {inReplyTo, code, message, details}}  (the code's status)
 * ```
 *
 * Over libp2p the stream's PeerId says which mesh asks; over HTTP the envelope's verified
 * origin does (its current key). From there the request takes the libp2p handler's own
 * path (`InvokeProtocol.admit` then `run`): accepted connection, current key, policy,
 * per-peer rate, the request's shape, then the dispatcher of `POST /api/invoke`. The
 * envelope id is remembered before the invocation runs: a copy is `MESH_REPLAY`, so an
 * invocation posted twice runs once.
 */
export const INVOKE_REQUEST_TYPE = 'invoke.request'
export const INVOKE_ANSWER_TYPE = 'invoke.answer'
export const INVOKE_ERROR_TYPE = 'invoke.error'

/** Largest `invoke.request` envelope: the request frame (a ≤ 16 KiB UCAN) and the envelope around it. */
export const HTTP_INVOKE_MAX_REQUEST = 20 * 1024

/** Room for the envelope around an answer frame. */
const REPLY_OVERHEAD = 4 * 1024

/** What the HTTP face uses of the invoke protocol: the libp2p handler's own checks. */
export interface InvokeHandler {
  admit(key: string): Promise<{ peer: string; error?: MeshError }>
  run(peer: string, request: unknown): Promise<PeerAnswer>
  /** Records a refusal of a request that never reached `admit` (forged, replayed, oversized). */
  refused(peer: string, err: MeshError): Promise<void>
}

export interface HttpInvokeComponents {
  key: () => Ed25519KeyPair
  /** Verifies invoke envelopes (protocol `/mesh/invoke/1.0.0`), large enough for an answer. */
  envelopes: Pick<EnvelopeVerifier, 'verify' | 'commit' | 'release'>
  route: Pick<HttpRoute, 'send'>
  handler: () => InvokeHandler
  /** Whether libp2p holds a connection to the key now (then libp2p is used). */
  libp2pConnected: (key: string) => boolean
  logger?: Logger
}

/** libp2p failures (as requestPeer reports them) after which the peer may be reached over HTTP. */
const UNREACHABLE = new Set(['no-address', 'connect-refused', 'timeout', 'protocol-version', 'network'])

/** Both halves of invocations over HTTP: the fallback of `InvokeProtocol.send`, and the receiving side. */
export class HttpInvoke implements InvokeOverHttp {
  readonly #c: HttpInvokeComponents
  readonly #protocol: string
  readonly #log: Logger

  constructor(components: HttpInvokeComponents, init: { protocol: string }) {
    this.#c = components
    this.#protocol = init.protocol
    this.#log = components.logger ?? silentLogger()
  }

  /**
   * `viaLibp2p` first (through the outbox's HttpRoute: its failure count and its return to
   * libp2p); when libp2p cannot reach the peer and it has an HTTP base, the request posted
   * there. A refusal by the peer is thrown as over libp2p (its code, `refusedBy`).
   */
  async send(
    peer: PeerView,
    request: { ucan: string },
    viaLibp2p: () => Promise<unknown>,
    options: { signal: AbortSignal; maxAnswerBytes: number },
  ): Promise<unknown> {
    const key = peer.keys.at(-1) ?? peer.did
    const env = createEnvelope(this.#c.key(), {
      type: INVOKE_REQUEST_TYPE,
      target: key,
      protocol: this.#protocol,
      body: request,
    })
    let outcome: { value: unknown } | { error: unknown } | undefined
    let unreachable: { delivery: DeliveryError; original: unknown } | undefined
    const sendOptions = { signal: options.signal, maxBytes: options.maxAnswerBytes + REPLY_OVERHEAD }
    let reply: Uint8Array
    try {
      reply = await this.#c.route.send(
        {
          peer: peer.did,
          key,
          type: INVOKE_REQUEST_TYPE,
          bytes: encodeEnvelope(env),
          connected: () => this.#c.libp2pConnected(key),
          viaLibp2p: async () => {
            try {
              outcome = { value: await viaLibp2p() }
            } catch (err) {
              const reason = err instanceof MeshError ? err.details.reason : undefined
              if (
                !(err instanceof MeshError) ||
                err.details.refusedBy !== undefined ||
                typeof reason !== 'string' ||
                !UNREACHABLE.has(reason)
              ) {
                outcome = { error: err }
                return new Uint8Array()
              }
              // Unreachable over libp2p: the route decides whether HTTP is tried now.
              const delivery = new DeliveryError(reason as 'network', err.code, err.message, err.details)
              unreachable = { delivery, original: err }
              throw delivery
            }
            return new Uint8Array()
          },
        },
        sendOptions,
      )
    } catch (err) {
      if (unreachable !== undefined && err === unreachable.delivery) throw unreachable.original
      if (err instanceof DeliveryError) {
        throw new MeshError(err.code, `the peer mesh cannot be reached: ${err.message}`, {
          ...err.details,
          reason: err.kind,
          mesh: peer.did,
        })
      }
      throw err
    }
    if (outcome !== undefined) {
      if ('error' in outcome) throw outcome.error
      return outcome.value
    }
    return answerValue(await this.#answerOf(reply, env.id, key), peer.did)
  }

  /** The answer frame carried by a reply envelope (verified: from the peer's key, to this request). */
  async #answerOf(bytes: Uint8Array, id: string, key: string): Promise<unknown> {
    let reply: Envelope
    try {
      reply = await this.#c.envelopes.verify(bytes, { remoteDid: key })
    } catch (err) {
      throw new MeshError('MESH_UNAVAILABLE', 'the peer mesh sent a reply that does not verify', {
        reason: 'bad-reply',
        cause: err instanceof MeshError ? err.code : 'MESH_INTERNAL',
      })
    }
    await this.#c.envelopes.release(reply)
    const { inReplyTo, ...rest } = reply.body as { inReplyTo?: unknown } & Record<string, unknown>
    if (inReplyTo !== id) return undefined
    if (reply.type === INVOKE_ANSWER_TYPE) return rest
    if (reply.type === INVOKE_ERROR_TYPE) return { error: rest }
    return undefined
  }

  /** The receiving side: one `invoke.request` envelope from `peeked.origin`; returns the signed reply. */
  async receive(bytes: Uint8Array, peeked: PeekedEnvelope): Promise<Uint8Array> {
    let env: Envelope | undefined
    const handler = this.#c.handler()
    try {
      if (bytes.byteLength > HTTP_INVOKE_MAX_REQUEST) {
        throw new TooLargeError('an invoke request envelope is too large', {
          size: bytes.byteLength,
          maxBytes: HTTP_INVOKE_MAX_REQUEST,
        })
      }
      env = await this.#c.envelopes.verify(bytes, { remoteDid: peeked.origin })
      if (env.type !== INVOKE_REQUEST_TYPE) {
        await this.#c.envelopes.release(env)
        throw new BadRequestError(`unexpected invoke message ${env.type}`, { type: env.type })
      }
      // At most once: the id is kept before the invocation runs.
      await this.#c.envelopes.commit(env)
    } catch (err) {
      const error = err instanceof MeshError ? err : new MeshError('MESH_INTERNAL', 'internal error')
      if (!(err instanceof MeshError)) {
        this.#log.error(
          { event: 'invoke.http.receive_failed', peer: peeked.origin, err },
          'invoke POST failed',
        )
      }
      await handler.refused(peeked.origin, error)
      return this.#reply(env ?? { id: '', origin: peeked.origin }, { error: errorBody(error) })
    }
    const admission = await handler.admit(env.origin)
    if (admission.error !== undefined) return this.#reply(env, { error: errorBody(admission.error) })
    return this.#reply(env, await handler.run(admission.peer, env.body))
  }

  #reply(to: Pick<Envelope, 'id' | 'origin'>, answer: PeerAnswer): Uint8Array {
    const body = 'ok' in answer ? { ok: answer.ok ?? null } : answer.error
    return encodeEnvelope(
      createEnvelope(this.#c.key(), {
        type: 'ok' in answer ? INVOKE_ANSWER_TYPE : INVOKE_ERROR_TYPE,
        target: to.origin,
        protocol: this.#protocol,
        body: { ...body, inReplyTo: to.id },
      }),
    )
  }
}

function errorBody(err: MeshError): { code: string; message: string; details: Record<string, unknown> } {
  return { code: err.code, message: err.message.slice(0, 1024), details: err.details }
}
