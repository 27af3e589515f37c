import { BadRequestError, MeshError, TooLargeError } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import { DeliveryError } from './connect-protocol.ts'
import type { PeerView } from './connection-book.ts'
import { createEnvelope, type Envelope, type EnvelopeVerifier, encodeEnvelope } from './envelope.ts'
import type { HttpRoute, PeekedEnvelope } from './http-federation.ts'
import { answerValue, type PeerAnswer, type RequestsOverHttp } from './peer-request.ts'

/**
 * The request/answer protocols to connected peers (`/mesh/invoke/1.0.0`,
 * `/mesh/audit/1.0.0`) over plain HTTP (SPEC §12): the protocol's request frame as the
 * body of a signed envelope posted to the peer's `/federation/send`, its answer frame in
 * the signed reply envelope (`<kind>` is `invoke` or `audit`):
 *
 * ```
 * sender → peer   envelope{type: <kind>.request, protocol, body: <request frame>}
 * peer → sender   envelope{type: <kind>.answer, body: {inReplyTo, ok}}                      (HTTP 200)
 *              or envelope{type: <kind>.error,  body: {inReplyTo, code, message, details}}  (the code's status)
 * ```
 *
 * Over libp2p the stream's PeerId says which mesh asks; over HTTP the envelope's verified
 * origin does (its current key). From there the request takes the libp2p handler's own
 * path (`admit` then `run`): accepted connection, current key, policy, per-peer rate, the
 * request's shape, then the handler. The envelope id is remembered before the request
 * runs: a copy is `MESH_REPLAY`, so an invocation posted twice runs once.
 */
/** Room for the envelope around a request or an answer frame. */
export const ENVELOPE_OVERHEAD = 4 * 1024

/** What the HTTP face uses of a protocol: the libp2p handler's own checks and answer. */
export interface PeerRequestHandler<A extends { peer: string; error?: MeshError }> {
  admit(key: string): Promise<A>
  run(admitted: A, request: unknown): Promise<PeerAnswer>
  /** Records a refusal of a request that never reached `admit` (forged, replayed, oversized). */
  refused(peer: string, err: MeshError): Promise<void>
}

export interface HttpRequestsComponents<A extends { peer: string; error?: MeshError }> {
  key: () => Ed25519KeyPair
  /** Verifies the protocol's envelopes, large enough for an answer. */
  envelopes: Pick<EnvelopeVerifier, 'verify' | 'commit' | 'release'>
  route: Pick<HttpRoute, 'send'>
  handler: () => PeerRequestHandler<A>
  /** Whether libp2p holds a connection to the key now (then libp2p is used). */
  libp2pConnected: (key: string) => boolean
  logger?: Logger
}

/** libp2p failures (as requestPeer reports them) after which the peer may be reached over HTTP. */
const UNREACHABLE = new Set(['no-address', 'connect-refused', 'timeout', 'protocol-version', 'network'])

export interface HttpRequestsInit {
  /** The protocol id (`/mesh/invoke/1.0.0`, `/mesh/audit/1.0.0`). */
  protocol: string
  /** The envelope types' prefix: `invoke`, `audit`. */
  kind: string
  /** Largest request envelope taken. */
  maxRequestBytes: number
}

/** Both halves of one protocol over HTTP: the fallback of its sender, and the receiving side. */
export class HttpRequests<A extends { peer: string; error?: MeshError }> implements RequestsOverHttp {
  readonly #c: HttpRequestsComponents<A>
  readonly #init: HttpRequestsInit
  readonly #type: { request: string; answer: string; error: string }
  readonly #log: Logger

  constructor(components: HttpRequestsComponents<A>, init: HttpRequestsInit) {
    this.#c = components
    this.#init = init
    this.#type = {
      request: `${init.kind}.request`,
      answer: `${init.kind}.answer`,
      error: `${init.kind}.error`,
    }
    this.#log = components.logger ?? silentLogger()
  }

  /**
   * `viaLibp2p` first (through the outbox's HttpRoute: its failure count and its return to
   * libp2p); when libp2p cannot reach the peer and it has an HTTP base, the request posted
   * there. A refusal by the peer is thrown as over libp2p (its code, `refusedBy`).
   */
  async send(
    peer: PeerView,
    request: unknown,
    viaLibp2p: () => Promise<unknown>,
    options: { signal: AbortSignal; maxAnswerBytes: number },
  ): Promise<unknown> {
    const key = peer.keys.at(-1) ?? peer.did
    const env = createEnvelope(this.#c.key(), {
      type: this.#type.request,
      target: key,
      protocol: this.#init.protocol,
      body: request as Record<string, unknown>,
    })
    let outcome: { value: unknown } | { error: unknown } | undefined
    let unreachable: { delivery: DeliveryError; original: unknown } | undefined
    const sendOptions = { signal: options.signal, maxBytes: options.maxAnswerBytes + ENVELOPE_OVERHEAD }
    let reply: Uint8Array
    try {
      reply = await this.#c.route.send(
        {
          peer: peer.did,
          key,
          type: this.#type.request,
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
    if (reply.type === this.#type.answer) return rest
    if (reply.type === this.#type.error) return { error: rest }
    return undefined
  }

  /** The receiving side: one `<kind>.request` envelope from `peeked.origin`; returns the signed reply. */
  async receive(bytes: Uint8Array, peeked: PeekedEnvelope): Promise<Uint8Array> {
    let env: Envelope | undefined
    const handler = this.#c.handler()
    try {
      if (bytes.byteLength > this.#init.maxRequestBytes) {
        throw new TooLargeError(`a ${this.#type.request} envelope is too large`, {
          size: bytes.byteLength,
          maxBytes: this.#init.maxRequestBytes,
        })
      }
      env = await this.#c.envelopes.verify(bytes, { remoteDid: peeked.origin })
      if (env.type !== this.#type.request) {
        await this.#c.envelopes.release(env)
        throw new BadRequestError(`unexpected ${this.#init.kind} message ${env.type}`, { type: env.type })
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
    return this.#reply(env, await handler.run(admission, env.body))
  }

  #reply(to: Pick<Envelope, 'id' | 'origin'>, answer: PeerAnswer): Uint8Array {
    const body = 'ok' in answer ? { ok: answer.ok ?? null } : answer.error
    return encodeEnvelope(
      createEnvelope(this.#c.key(), {
        type: 'ok' in answer ? this.#type.answer : this.#type.error,
        target: to.origin,
        protocol: this.#init.protocol,
        body: { ...body, inReplyTo: to.id },
      }),
    )
  }
}

function errorBody(err: MeshError): { code: string; message: string; details: Record<string, unknown> } {
  return { code: err.code, message: err.message.slice(0, 1024), details: err.details }
}
