import type { Connection, Stream } from '@libp2p/interface'
import type { CheckpointExchangeBody } from '../../audit/index.ts'
import type { ActGate, GateAct } from '../../auth/acts/index.ts'
import { BadRequestError, MeshError } from '../../errors.ts'
import { didFromPeerId, type Ed25519KeyPair } from '../../identity/index.ts'
import type { Logger } from '../../log.ts'
import {
  CONNECT_MESSAGE,
  type ConnectErrorBody,
  MESH_CONNECT_PROTOCOL,
  serveExchange,
} from '../connect-protocol.ts'
import { type Applied, boundDetails, type ConnectionBook, isConnectionId } from '../connection-book.ts'
import {
  createEnvelope,
  type Envelope,
  type EnvelopeVerifier,
  encodeEnvelope,
  type VerifyEnvelopeOptions,
} from '../envelope.ts'
import type { PeerRotation } from '../peer-rotation.ts'
import type { PeerBook } from '../peers.ts'
import type { PolicyService } from '../policy.ts'
import type { RateLimiter } from '../rate-limiter.ts'
import type { Refusals } from '../refusals.ts'
import type { ConnectHandler } from './handler.ts'

export interface InboundComponents {
  limiter: Pick<RateLimiter, 'consume'>
  envelopes: Pick<EnvelopeVerifier, 'verify' | 'release'>
  peers: Pick<PeerBook, 'identityOf'>
  policy: Pick<PolicyService, 'evaluate'>
  acts: Pick<ActGate, 'release'>
  book: Pick<ConnectionBook, 'serial' | 'get'>
  refusals: Pick<Refusals, 'wire' | 'interaction'>
  rotation: Pick<PeerRotation, 'refuseRetiredKey'>
  /** One handler per handshake message type. */
  handlers: Record<string, ConnectHandler>
  keyRotated: { handle(env: Envelope): Promise<Applied> }
  checkpoint: { handle(env: Envelope, identity: string | undefined): Promise<CheckpointExchangeBody> }
  key: () => Ed25519KeyPair
  logger: Logger
}

/**
 * The receiving side of `/mesh/connect/1.0.0`: rate limit, envelope check, the peer's
 * current key, policy, then the message type's handler in the book's queue; every
 * refusal answered with a signed error and recorded, a refused message storing
 * nothing else (its envelope id and act are released).
 */
export class Inbound {
  readonly #c: InboundComponents
  readonly #sendTimeoutMs: number

  constructor(components: InboundComponents, init: { sendTimeoutMs?: number } = {}) {
    this.#c = components
    this.#sendTimeoutMs = init.sendTimeoutMs ?? 10_000
  }

  /** The libp2p stream handler: one exchange, the reply being `receive`'s. */
  onStream(stream: Stream, connection: Connection): void {
    const remoteDid = didFromPeerId(connection.remotePeer)
    void serveExchange(stream, connection, (bytes) => this.receive(bytes, remoteDid), {
      signal: AbortSignal.timeout(this.#sendTimeoutMs),
      onError: (err) => {
        this.#c.logger.debug(
          { event: 'federation.stream_failed', peer: remoteDid, err },
          'inbound stream failed',
        )
      },
    })
  }

  /**
   * Handles one message from the libp2p peer `remoteDid` and returns the signed reply
   * (an ack, or an error with the refusal's code). Every refusal is recorded in the
   * rejected log and the audit log; a refused message stores nothing else.
   */
  async receive(
    bytes: Uint8Array,
    remoteDid: string,
    options: Pick<VerifyEnvelopeOptions, 'maxAgeMs'> = {}, // store and forward (SPEC §10)
  ): Promise<Uint8Array> {
    let envelope: Envelope | undefined
    let act: GateAct | undefined
    try {
      this.#c.limiter.consume(remoteDid)
      envelope = await this.#c.envelopes.verify(bytes, { remoteDid, ...options })
      const env = envelope
      const known = await this.#c.peers.identityOf(env.origin)
      if (known !== undefined) await this.#c.rotation.refuseRetiredKey(known, env.origin)
      if (env.type === CONNECT_MESSAGE.checkpoint) {
        const reply = await this.#c.checkpoint.handle(env, known)
        return this.#reply(remoteDid, env.id, CONNECT_MESSAGE.checkpointAck, reply)
      }
      if (env.type === CONNECT_MESSAGE.keyRotated) {
        const result = await this.#c.book.serial(() => this.#c.keyRotated.handle(env))
        return this.#reply(remoteDid, env.id, CONNECT_MESSAGE.ack, result.reply)
      }
      const identity = known ?? env.origin
      if (env.type !== CONNECT_MESSAGE.disconnect) {
        const decision = await this.#c.policy.evaluate(identity)
        if (!decision.ok) throw decision.error
      }
      const handler = Object.hasOwn(this.#c.handlers, env.type) ? this.#c.handlers[env.type] : undefined
      const result = await this.#c.book.serial(async () => {
        if (handler === undefined)
          throw new BadRequestError(`unexpected message type ${env.type}`, { type: env.type })
        return handler.handle(env, identity, (a) => {
          act = a
        })
      })
      this.#c.refusals.interaction(identity, act?.human ?? act?.issuer, 'accepted', env.type)
      return this.#reply(remoteDid, env.id, CONNECT_MESSAGE.ack, result.reply)
    } catch (err) {
      return this.#refused(err, bytes, remoteDid, envelope, act)
    }
  }

  async #refused(
    err: unknown,
    bytes: Uint8Array,
    remoteDid: string,
    envelope: Envelope | undefined,
    act: GateAct | undefined,
  ): Promise<Uint8Array> {
    if (envelope !== undefined) await this.#c.envelopes.release(envelope).catch(() => {})
    if (act !== undefined) await this.#c.acts.release(act).catch(() => {})
    const error = err instanceof MeshError ? err : new MeshError('MESH_INTERNAL', 'internal error')
    if (!(err instanceof MeshError)) {
      this.#c.logger.error(
        { event: 'federation.receive_failed', peer: remoteDid, err },
        'handling a message failed',
      )
    }
    const peeked = envelope ?? peekEnvelope(bytes)
    const duplicate = error.code === 'MESH_REPLAY' && error.details.reason === 'duplicate'
    if (duplicate) await this.#addState(error, remoteDid, peeked).catch(() => {})
    await this.#c.refusals.wire(error, remoteDid, peeked)
    // Only a message whose signature verified speaks for its mesh; a retried
    // duplicate, a rate limit and a crossed request (issue 13) are not misbehaviour.
    const crossed = error.code === 'MESH_CONFLICT' && error.details.reason === 'crossed'
    if (envelope !== undefined && !duplicate && !crossed && error.code !== 'MESH_RATE_LIMITED') {
      const mesh = (await this.#c.peers.identityOf(envelope.origin).catch(() => undefined)) ?? envelope.origin
      this.#c.refusals.interaction(mesh, undefined, 'refused', error.code)
    }
    const inReplyTo = envelope?.id ?? peekEnvelope(bytes)?.id ?? ''
    const body: ConnectErrorBody = {
      inReplyTo: typeof inReplyTo === 'string' ? inReplyTo.slice(0, 64) : '',
      code: error.code,
      message: error.message.slice(0, 1024),
      details: boundDetails(error.details),
    }
    return this.#reply(remoteDid, body.inReplyTo, CONNECT_MESSAGE.error, body)
  }

  /**
   * A duplicate passed the signature check before it was refused, so it is the
   * peer's own message: the refusal tells it the connection's current state, so that
   * a sender whose first copy's ack was lost still learns the outcome.
   */
  async #addState(
    error: MeshError,
    remoteDid: string,
    envelope: { body?: unknown } | undefined,
  ): Promise<void> {
    const connectionId = (envelope?.body as { connectionId?: unknown } | undefined)?.connectionId
    if (!isConnectionId(connectionId)) return
    const record = await this.#c.book.get(connectionId)
    const identity = (await this.#c.peers.identityOf(remoteDid)) ?? remoteDid
    if (record === undefined || record.peerDid !== identity) return
    error.details.connectionId = record.id
    error.details.status = record.status
    error.details.agreementVersion = record.agreementVersion
  }

  #reply(target: string, inReplyTo: string, type: string, body: Record<string, unknown>): Uint8Array {
    return encodeEnvelope(
      createEnvelope(this.#c.key(), {
        type,
        target,
        protocol: MESH_CONNECT_PROTOCOL,
        body: { ...body, inReplyTo },
      }),
    )
  }
}

/** Reads `id`, `type` and `body` from bytes that did not verify, for the refusal record. */
function peekEnvelope(bytes: Uint8Array): { id?: unknown; type?: unknown; body?: unknown } | undefined {
  if (bytes.byteLength > 64 * 1024) return undefined
  try {
    const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}
