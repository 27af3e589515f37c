import type { AbortOptions, Connection, PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { checkpointSchema } from '../audit/checkpoint.ts'
import { revocationNoticeSchema } from '../auth/authority/index.ts'
import { BadRequestError, type MeshErrorCode } from '../errors.ts'
import { type RotationRecord, rotationChainSchema } from '../identity/index.ts'
import { type MeshLibp2p, openStream } from '../p2p/index.ts'
import { lazyValidator } from '../schema.ts'
import { ENVELOPE_LIMITS } from './envelope.ts'

/**
 * `/mesh/connect/1.0.0` — the federation handshake on the wire.
 *
 * One stream per message. The sender opens a stream, writes ONE varint
 * length-prefixed signed envelope (envelope.ts) and waits; the receiver reads it,
 * verifies it (the envelope's origin must be the stream's remote PeerId as did:key),
 * applies it, writes ONE length-prefixed signed reply envelope and closes:
 *
 * ```
 * sender → receiver   lp(envelope{type: connect.request|connect.accept|connect.decline|connect.disconnect})
 * receiver → sender   lp(envelope{type: connect.ack,   body: {inReplyTo, name, connectionId, status, agreementVersion}})
 *                  or lp(envelope{type: connect.error, body: {inReplyTo, code, message, details}})
 * ```
 *
 * `inReplyTo` is the id of the envelope answered, so a reply cannot be moved to
 * another exchange. Bodies (every field required unless marked `?`):
 *
 * - `connect.request` {connectionId, nonce, name, architectDid, multiaddrs, protocolVersions,
 *   agreementVersion (proposed), decidedAt, note?} — `auth.proofs[0]` is the requesting
 *   architect's act `mesh/connect` (iss = architectDid, aud = the requesting mesh,
 *   with = the target mesh did).
 * - `connect.accept` / `connect.decline` {connectionId, requestNonce (echo of the request's
 *   nonce), agreementVersion, architectDid, decidedAt} — the accepting architect's act
 *   `connection/accept|decline` (aud = the answering mesh, with = connectionId).
 * - `connect.disconnect` {connectionId, agreementVersion, architectDid, decidedAt} — the
 *   act `connection/disconnect` of the side that ends it.
 *
 * - `mesh.key-rotated` {connectionId, identity, rotations} — the sender rotated its mesh
 *   key: `rotations` is its chain of rotation records (identity/rotation.ts) from its
 *   identity (genesis did) to the key that signs this envelope. No human act: the chain
 *   is the proof. The receiver accepts the new key only if the chain continues from the
 *   key it holds as the sender's current one; the ack names `connectionId`'s state.
 *
 * - `audit.checkpoint` {connectionId, checkpoint, held} — the sender's signed audit
 *   checkpoint and the latest one it holds of the receiver's log (audit/checkpoint-gossip.ts),
 *   sent only over an accepted connection; answered by
 *   `audit.checkpoint-ack` {inReplyTo, checkpoint, held} (the receiver's), not `connect.ack`.
 *
 * - `ucan.revoked` {connectionId, notice, delegation, credentials} — the sender revoked a
 *   delegation one of its principals issued: `notice` is the revocation signed by its mesh
 *   key (auth/authority/revocation-notice.ts), `delegation` the revoked token (its CID must
 *   be the notice's), `credentials` the membership credentials the sender issued to the
 *   delegation's issuer. Sent over an accepted connection; the receiver keeps it for good.
 *
 * `decidedAt` (ms) is when the sending mesh carried out its human's act; the receiver
 * judges the act's time bounds at that instant, so that a message that waited in an
 * outbox while the peer was offline still carries a valid consent.
 */
export const MESH_CONNECT_PROTOCOL = '/mesh/connect/1.0.0'

/** Protocol ids of the handshake this node speaks (newest first). */
export const CONNECT_PROTOCOLS: readonly string[] = [MESH_CONNECT_PROTOCOL]

export const CONNECT_MESSAGE = {
  request: 'connect.request',
  accept: 'connect.accept',
  decline: 'connect.decline',
  disconnect: 'connect.disconnect',
  keyRotated: 'mesh.key-rotated',
  checkpoint: 'audit.checkpoint',
  checkpointAck: 'audit.checkpoint-ack',
  ack: 'connect.ack',
  error: 'connect.error',
  // revocation that travels (SPEC §9)
  ucanRevoked: 'ucan.revoked',
} as const
export type ConnectMessageType = (typeof CONNECT_MESSAGE)[keyof typeof CONNECT_MESSAGE]
export type ConnectCommandType = Exclude<
  ConnectMessageType,
  'connect.ack' | 'connect.error' | 'audit.checkpoint' | 'audit.checkpoint-ack'
>

export const CONNECTION_STATUSES = ['pending', 'accepted', 'declined', 'disconnected'] as const
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number]

export interface ConnectRequestBody extends Record<string, unknown> {
  connectionId: string
  nonce: string
  name: string
  architectDid: string
  multiaddrs: string[]
  protocolVersions: string[]
  agreementVersion: number
  decidedAt: number
  note?: string
  // phase-1 HTTP federation (SPEC §12): where the requesting mesh takes federation POSTs
  http?: string
}

export interface ConnectAnswerBody extends Record<string, unknown> {
  connectionId: string
  requestNonce: string
  agreementVersion: number
  architectDid: string
  decidedAt: number
}

export interface ConnectDisconnectBody extends Record<string, unknown> {
  connectionId: string
  agreementVersion: number
  architectDid: string
  decidedAt: number
}

export interface KeyRotatedBody extends Record<string, unknown> {
  connectionId: string
  identity: string
  rotations: RotationRecord[]
}

export interface ConnectAckBody extends Record<string, unknown> {
  inReplyTo: string
  /** The answering mesh's name. */
  name: string
  connectionId: string
  status: ConnectionStatus
  agreementVersion: number
}

export interface ConnectErrorBody extends Record<string, unknown> {
  inReplyTo: string
  code: MeshErrorCode
  message: string
  details: Record<string, unknown>
}

const DID = { type: 'string', maxLength: 128, pattern: '^did:key:z[1-9A-HJ-NP-Za-km-z]+$' } as const
const ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{16,64}$' } as const
const VERSION = { type: 'integer', minimum: 1, maximum: 1_000_000 } as const
const MS = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const

const bodySchemas: Record<string, object> = {
  [CONNECT_MESSAGE.request]: {
    type: 'object',
    additionalProperties: false,
    required: [
      'connectionId',
      'nonce',
      'name',
      'architectDid',
      'multiaddrs',
      'protocolVersions',
      'agreementVersion',
      'decidedAt',
    ],
    properties: {
      connectionId: ID,
      nonce: ID,
      name: { type: 'string', minLength: 1, maxLength: 128 },
      architectDid: DID,
      multiaddrs: { type: 'array', maxItems: 32, items: { type: 'string', maxLength: 256 } },
      protocolVersions: { type: 'array', maxItems: 32, items: { type: 'string', maxLength: 64 } },
      agreementVersion: VERSION,
      decidedAt: MS,
      note: { type: 'string', maxLength: 1024 },
      // phase-1 HTTP federation (SPEC §12)
      http: { type: 'string', maxLength: 512, pattern: '^https?://[\\x21-\\x7e]+$' },
    },
  },
  [CONNECT_MESSAGE.accept]: answerSchema(),
  [CONNECT_MESSAGE.decline]: answerSchema(),
  [CONNECT_MESSAGE.disconnect]: {
    type: 'object',
    additionalProperties: false,
    required: ['connectionId', 'agreementVersion', 'architectDid', 'decidedAt'],
    properties: { connectionId: ID, agreementVersion: VERSION, architectDid: DID, decidedAt: MS },
  },
  [CONNECT_MESSAGE.keyRotated]: {
    type: 'object',
    additionalProperties: false,
    required: ['connectionId', 'identity', 'rotations'],
    properties: { connectionId: ID, identity: DID, rotations: { ...rotationChainSchema, minItems: 1 } },
  },
  [CONNECT_MESSAGE.checkpoint]: {
    type: 'object',
    additionalProperties: false,
    required: ['connectionId', 'checkpoint', 'held'],
    properties: {
      connectionId: ID,
      checkpoint: checkpointSchema,
      held: { anyOf: [{ type: 'null' }, checkpointSchema] },
    },
  },
  [CONNECT_MESSAGE.checkpointAck]: {
    type: 'object',
    additionalProperties: false,
    required: ['inReplyTo', 'checkpoint', 'held'],
    properties: {
      inReplyTo: { type: 'string', maxLength: 64 },
      checkpoint: checkpointSchema,
      held: { anyOf: [{ type: 'null' }, checkpointSchema] },
    },
  },
  [CONNECT_MESSAGE.ack]: {
    type: 'object',
    additionalProperties: false,
    required: ['inReplyTo', 'name', 'connectionId', 'status', 'agreementVersion'],
    properties: {
      inReplyTo: { type: 'string', maxLength: 64 },
      name: { type: 'string', minLength: 1, maxLength: 128 },
      connectionId: ID,
      status: { type: 'string', enum: CONNECTION_STATUSES },
      agreementVersion: VERSION,
    },
  },
  [CONNECT_MESSAGE.error]: {
    type: 'object',
    additionalProperties: false,
    required: ['inReplyTo', 'code', 'message', 'details'],
    properties: {
      inReplyTo: { type: 'string', maxLength: 64 },
      code: { type: 'string', pattern: '^MESH_[A-Z_]{1,40}$' },
      message: { type: 'string', maxLength: 1024 },
      details: { type: 'object' },
    },
  },
}

// revocation that travels (SPEC §9)
bodySchemas[CONNECT_MESSAGE.ucanRevoked] = {
  type: 'object',
  additionalProperties: false,
  required: ['connectionId', 'notice', 'delegation', 'credentials'],
  properties: {
    connectionId: ID,
    notice: revocationNoticeSchema,
    delegation: { type: 'string', minLength: 1, maxLength: 32 * 1024, pattern: '^[A-Za-z0-9_-]+$' },
    credentials: {
      type: 'array',
      maxItems: 4,
      items: { type: 'string', minLength: 1, maxLength: 4096, pattern: '^[A-Za-z0-9_.-]+$' },
    },
  },
}

function answerSchema(): object {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['connectionId', 'requestNonce', 'agreementVersion', 'architectDid', 'decidedAt'],
    properties: {
      connectionId: ID,
      requestNonce: ID,
      agreementVersion: VERSION,
      architectDid: DID,
      decidedAt: MS,
    },
  }
}

const validators = new Map(Object.entries(bodySchemas).map(([type, schema]) => [type, lazyValidator(schema)]))

/** Checks a message body against its type's schema; MESH_BAD_REQUEST for an unknown type or a bad body. */
export function checkBody<B>(type: string, body: unknown): B {
  const validate = validators.get(type)
  if (validate === undefined) throw new BadRequestError(`unknown message type ${type}`, { type })
  if (!validate(body)) {
    const first = validate.errors?.[0]
    throw new BadRequestError(
      `invalid ${type} body: ${first?.instancePath || '/'} ${first?.message ?? ''}`.trim(),
      { validation: first },
    )
  }
  return body as B
}

/** Limits of one exchange. */
export interface ExchangeOptions extends AbortOptions {
  /** Largest message accepted from the other side; default the envelope limit (64 KiB). */
  maxBytes?: number
}

/**
 * The sender's half of one exchange: opens a stream to `peer`, writes `message`,
 * reads one reply and closes. Throws libp2p's errors as they are (UnsupportedProtocolError
 * when the peer does not speak `protocol`, dial errors, timeouts); see `classifyDeliveryError`.
 */
export async function exchange(
  libp2p: MeshLibp2p,
  peer: PeerId,
  message: Uint8Array,
  options: ExchangeOptions & { protocol?: string } = {},
): Promise<Uint8Array> {
  // reachability (SPEC §10): over a relayed (limited) connection too, reused while open
  const stream = await openStream(libp2p, peer, options.protocol ?? MESH_CONNECT_PROTOCOL, options)
  try {
    const lp = lpStream(stream, { maxDataLength: options.maxBytes ?? ENVELOPE_LIMITS.maxBytes })
    await lp.write(message, options)
    const reply = await lp.read(options)
    await stream.close(options)
    return reply.subarray()
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

/** What a protocol handler does with one incoming message: returns the reply bytes. */
export type ExchangeHandler = (message: Uint8Array, connection: Connection) => Promise<Uint8Array>

/**
 * The receiver's half: reads one message, lets `handle` produce the reply, writes it
 * and closes. A stream that sends nothing in time, or too much, is aborted; `onError`
 * hears about it (nothing was applied, since nothing was read).
 */
export async function serveExchange(
  stream: Stream,
  connection: Connection,
  handle: ExchangeHandler,
  options: ExchangeOptions & { onError?: (err: unknown) => void } = {},
): Promise<void> {
  try {
    const lp = lpStream(stream, { maxDataLength: options.maxBytes ?? ENVELOPE_LIMITS.maxBytes })
    const message = await lp.read(options)
    const reply = await handle(message.subarray(), connection)
    await lp.write(reply, options)
    await stream.close(options)
  } catch (err) {
    stream.abort(err as Error)
    options.onError?.(err)
  }
}

/**
 * Delivery failures, classified so that an operator knows what to fix (seed 004):
 *
 * - `no-address`: no multiaddr is known for the peer (nor found through discovery).
 * - `connect-refused`: every address refused or failed the dial.
 * - `timeout`: the dial or the exchange took longer than the send timeout.
 * - `protocol-version`: the peer does not speak a version of the protocol we speak.
 * - `remote-refused`: the peer answered with an error (`code` is its MESH_… code).
 * - `bad-reply`: the reply did not verify (signature, target, inReplyTo…).
 * - `network`: the stream broke in another way (reset, EOF).
 */
export const DELIVERY_ERROR_KINDS = [
  'no-address',
  'connect-refused',
  'timeout',
  'protocol-version',
  'remote-refused',
  'bad-reply',
  'network',
] as const
export type DeliveryErrorKind = (typeof DELIVERY_ERROR_KINDS)[number]

export class DeliveryError extends Error {
  readonly kind: DeliveryErrorKind
  /** The MESH_… code: the remote's for `remote-refused`, ours otherwise. */
  readonly code: MeshErrorCode
  readonly details: Record<string, unknown>

  constructor(
    kind: DeliveryErrorKind,
    code: MeshErrorCode,
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(message)
    this.name = 'DeliveryError'
    this.kind = kind
    this.code = code
    this.details = details
  }
}

/** Maps whatever a dial or an exchange threw to a DeliveryError. */
export function classifyDeliveryError(err: unknown): DeliveryError {
  if (err instanceof DeliveryError) return err
  const e = err as { name?: string; message?: string; code?: string; errors?: unknown[] }
  const message = e?.message ?? String(err)
  const name = e?.name ?? ''
  if (name === 'UnsupportedProtocolError') {
    return new DeliveryError(
      'protocol-version',
      'MESH_PROTOCOL_VERSION',
      'peer does not speak the protocol',
      {
        ours: [...CONNECT_PROTOCOLS],
      },
    )
  }
  if (name === 'TimeoutError' || name === 'AbortError' || /timed? ?out|aborted/i.test(message)) {
    return new DeliveryError('timeout', 'MESH_UNAVAILABLE', message)
  }
  if (name === 'NoValidAddressesError' || /no valid addresses|no known addresses/i.test(message)) {
    return new DeliveryError('no-address', 'MESH_UNAVAILABLE', message)
  }
  if (
    name === 'DialError' ||
    name === 'ConnectionFailedError' ||
    name === 'AggregateError' ||
    e?.code === 'ECONNREFUSED' ||
    /ECONNREFUSED|dial|connect/i.test(message)
  ) {
    return new DeliveryError('connect-refused', 'MESH_UNAVAILABLE', message)
  }
  return new DeliveryError('network', 'MESH_UNAVAILABLE', message, { name })
}
