import { randomBytes } from 'node:crypto'
import {
  BadRequestError,
  ClockSkewError,
  type MeshError,
  ProtocolVersionError,
  ReplayError,
  SignatureMismatchError,
  TooLargeError,
} from '../errors.ts'
import { type Ed25519KeyPair, isDidKey, signCanonical, verifyCanonical } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import { lazyValidator } from '../schema.ts'
import type { MeshStore, StoreOperation } from '../store/index.ts'
import { SeenSet } from '../store/index.ts'

/**
 * The signed envelope that carries every federation message between two meshes:
 *
 * ```
 * {v: 1, id, type, origin, target, ts, protocol, body, auth?: {proofs: [string]}, signature}
 * ```
 *
 * - `id`: 16 random bytes, base64url (22 chars). A receiver applies an id from one
 *   origin at most once; an outbox that retries re-sends the same id.
 * - `type`: the message kind, dotted lowercase (`connect.request`, `connect.accept`).
 * - `origin`, `target`: the sending and receiving meshes' did:key. The origin must be
 *   the libp2p peer the envelope arrived from; the target must be the receiver, so a
 *   message cannot be reflected back or redirected to a third mesh.
 * - `ts`: the sender's clock, ms since the epoch; refused beyond ±60 s.
 * - `protocol`: the protocol id and version the body follows (`/mesh/connect/1.0.0`).
 * - `body`: a JSON object, the message itself.
 * - `auth.proofs`: encoded authorizations, opaque to the envelope: a human act's UCAN
 *   chain, then the credentials of its humans.
 *   They are signed as part of the envelope, so a proof cannot be swapped in transit.
 * - `signature`: the origin mesh key's Ed25519 signature (base64url) over the RFC 8785
 *   canonical JSON of every other field.
 */
export const ENVELOPE_VERSION = 1

export const ENVELOPE_LIMITS = {
  /** Largest encoded envelope accepted by default. */
  maxBytes: 64 * 1024,
  /** Deepest nesting of `body`, so handlers may walk it recursively. */
  maxBodyDepth: 32,
  maxProofs: 16,
  maxProofLength: 16 * 1024,
} as const

/** How far an envelope's `ts` may be from the receiver's clock by default. */
export const ENVELOPE_MAX_SKEW_MS = 60_000

export interface EnvelopeAuth {
  /** Encoded authorizations, each verified by whoever understands its format. */
  proofs: string[]
}

export interface EnvelopeContent<B extends Record<string, unknown> = Record<string, unknown>> {
  v: typeof ENVELOPE_VERSION
  id: string
  type: string
  origin: string
  target: string
  ts: number
  protocol: string
  body: B
  auth?: EnvelopeAuth
}

export interface Envelope<B extends Record<string, unknown> = Record<string, unknown>>
  extends EnvelopeContent<B> {
  signature: string
}

const DID_KEY = { type: 'string', maxLength: 128, pattern: '^did:key:z[1-9A-HJ-NP-Za-km-z]+$' } as const

export const envelopeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['v', 'id', 'type', 'origin', 'target', 'ts', 'protocol', 'body', 'signature'],
  properties: {
    v: { const: ENVELOPE_VERSION },
    id: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' },
    type: { type: 'string', maxLength: 64, pattern: '^[a-z][a-z0-9-]*(\\.[a-z][a-z0-9-]*)*$' },
    origin: DID_KEY,
    target: DID_KEY,
    ts: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    protocol: { type: 'string', maxLength: 128, pattern: '^/[\\x21-\\x7e]+$' },
    body: { type: 'object' },
    auth: {
      type: 'object',
      additionalProperties: false,
      required: ['proofs'],
      properties: {
        proofs: {
          type: 'array',
          maxItems: ENVELOPE_LIMITS.maxProofs,
          items: {
            type: 'string',
            minLength: 1,
            maxLength: ENVELOPE_LIMITS.maxProofLength,
            pattern: '^[\\x21-\\x7e]+$',
          },
        },
      },
    },
    // 64 signature bytes in unpadded base64url
    signature: { type: 'string', pattern: '^[A-Za-z0-9_-]{86}$' },
  },
} as const

const validateShape = lazyValidator<Envelope>(envelopeSchema)

export interface CreateEnvelopeOptions<B extends Record<string, unknown> = Record<string, unknown>> {
  type: string
  target: string
  protocol: string
  body: B
  auth?: EnvelopeAuth
  /** The sender's clock in ms; default `Date.now()`. */
  now?: number
  /** Reuse an id when re-sending the same message (an outbox retry); default a new random id. */
  id?: string
}

/** A new envelope id: 16 random bytes, base64url. */
export function newEnvelopeId(): string {
  return randomBytes(16).toString('base64url')
}

/** Signs a message from the mesh `key` (the origin) to `target`. */
export function createEnvelope<B extends Record<string, unknown>>(
  key: Ed25519KeyPair,
  options: CreateEnvelopeOptions<B>,
): Envelope<B> {
  const content: EnvelopeContent<B> = {
    v: ENVELOPE_VERSION,
    id: options.id ?? newEnvelopeId(),
    type: options.type,
    origin: key.did,
    target: options.target,
    ts: options.now ?? Date.now(),
    protocol: options.protocol,
    body: options.body,
  }
  if (options.auth !== undefined) content.auth = { proofs: [...options.auth.proofs] }
  return { ...content, signature: signCanonical(key, content) }
}

/** The wire form of an envelope: UTF-8 JSON. */
export function encodeEnvelope(envelope: Envelope<Record<string, unknown>>): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(envelope))
}

export interface EnvelopeVerifierInit {
  store: MeshStore
  /** This mesh's did; a function because key rotation changes it. */
  selfDid: () => string
  /** The protocol ids (with version) this node speaks. */
  protocols: readonly string[]
  /** Largest accepted |ts − now|; default 60 s. */
  maxSkewMs?: number
  /** Largest accepted encoded envelope; default 64 KiB. */
  maxBytes?: number
  /**
   * How long past its `ts` an id is remembered; default 2 × maxSkewMs + 60 s. Must
   * exceed 2 × maxSkewMs: an envelope older than maxSkewMs fails the clock check, and
   * the extra margin covers this node's clock stepping back after a prune.
   */
  retentionMs?: number
  /** Time between automatic prunes once `start()`ed; default 60 s. */
  pruneIntervalMs?: number
  /** The receiver's clock; default `Date.now`. */
  now?: () => number
  logger?: Logger
}

export interface VerifyEnvelopeOptions {
  /**
   * The did of the libp2p peer the envelope arrived from (its PeerId as did:key).
   * When given, the origin must be that peer.
   */
  remoteDid?: string
  // store and forward (SPEC §10): an envelope that waited in a relay's mailbox
  /**
   * How old (`now − ts`) the envelope may be, when more than the clock skew: an envelope that
   * waited in a relay's mailbox (its item signed and guarded against replay there). Its id
   * is then remembered for the retention from now, not from its `ts`.
   */
  maxAgeMs?: number
}

/**
 * Verifies incoming envelopes and remembers their ids. `verify` writes nothing: the
 * caller commits `seenOperations(envelope)` in the same atomic batch as the message's
 * effect (or calls `commit(envelope, effectOps)`, which does that), and `release`s an
 * envelope it does not apply (or whose batch failed) so that the sender may retry it.
 * One verifier per store: the seen ids are mirrored in its memory.
 */
export class EnvelopeVerifier {
  readonly #init: EnvelopeVerifierInit
  readonly #protocols: Set<string>
  readonly #maxSkewMs: number
  readonly #maxBytes: number
  readonly #retentionMs: number
  readonly #now: () => number
  readonly #seen: SeenSet
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  // Verified dids are kept so that the hot path does not decode base58 per message.
  readonly #validDids = new Set<string>()

  constructor(init: EnvelopeVerifierInit) {
    this.#init = init
    this.#protocols = new Set(init.protocols)
    this.#maxSkewMs = init.maxSkewMs ?? ENVELOPE_MAX_SKEW_MS
    this.#maxBytes = init.maxBytes ?? ENVELOPE_LIMITS.maxBytes
    this.#retentionMs = init.retentionMs ?? 2 * this.#maxSkewMs + 60_000
    if (this.#retentionMs <= 2 * this.#maxSkewMs) {
      throw new BadRequestError('envelope retention must exceed twice the clock skew', {
        retentionMs: this.#retentionMs,
        maxSkewMs: this.#maxSkewMs,
      })
    }
    this.#now = init.now ?? Date.now
    this.#seen = new SeenSet({ store: init.store, namespace: 'env' })
    this.#log = init.logger ?? silentLogger()
  }

  /** Prunes remembered ids periodically until `stop()`. */
  start(): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => {
      this.prune().catch((err: unknown) => {
        this.#log.error(
          { event: 'federation.envelope_prune_failed', err },
          'pruning seen envelope ids failed',
        )
      })
    }, this.#init.pruneIntervalMs ?? 60_000)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /**
   * Checks an envelope — raw bytes, JSON text, or an already parsed value — in this
   * order, each refusal with its code:
   *
   * 1. larger than maxBytes → MESH_TOO_LARGE
   * 2. not JSON, or not the envelope schema → MESH_BAD_REQUEST
   * 3. `protocol` not one of ours → MESH_PROTOCOL_VERSION (details: ours, theirs)
   * 4. origin is this mesh → MESH_REPLAY (reason 'reflected')
   * 5. origin is not `remoteDid` → MESH_SIGNATURE_MISMATCH
   * 6. target is not this mesh → MESH_REPLAY (reason 'wrong-target')
   * 7. signature not the origin's → MESH_SIGNATURE_MISMATCH
   * 8. |ts − now| > maxSkewMs → MESH_CLOCK_SKEW
   * 9. id already applied (or being applied) → MESH_REPLAY (reason 'duplicate')
   *
   * On success the id is claimed: a second copy is refused as a replay even before
   * the first is committed, until `release`.
   */
  async verify(input: unknown, options: VerifyEnvelopeOptions = {}): Promise<Envelope> {
    const value = this.#parse(input)
    if (!validateShape(value)) {
      const first = validateShape.errors?.[0]
      throw new BadRequestError(
        `invalid envelope: ${first?.instancePath || '/'} ${first?.message ?? ''}`.trim(),
        {
          validation: first,
        },
      )
    }
    if (!this.#isDid(value.origin) || !this.#isDid(value.target)) {
      throw new BadRequestError('envelope origin and target must be Ed25519 did:key', {
        origin: value.origin,
        target: value.target,
      })
    }
    if (!bodyDepthWithin(value.body, ENVELOPE_LIMITS.maxBodyDepth)) {
      throw new BadRequestError('envelope body is nested too deeply', {
        maxDepth: ENVELOPE_LIMITS.maxBodyDepth,
      })
    }
    if (!this.#protocols.has(value.protocol)) {
      throw new ProtocolVersionError('no protocol version in common', {
        ours: [...this.#protocols],
        theirs: value.protocol,
      })
    }
    // Reflection is named before the peer check: a reflected envelope also fails
    // that one, but 'reflected' is what an operator needs to read in the log.
    const self = this.#init.selfDid()
    if (value.origin === self) {
      throw new ReplayError('envelope from this mesh reflected back to it', {
        reason: 'reflected',
        id: value.id,
      })
    }
    if (options.remoteDid !== undefined && value.origin !== options.remoteDid) {
      throw new SignatureMismatchError('envelope origin is not the peer it came from', {
        origin: value.origin,
        remote: options.remoteDid,
      })
    }
    if (value.target !== self) {
      throw new ReplayError('envelope is meant for another mesh', {
        reason: 'wrong-target',
        id: value.id,
        target: value.target,
      })
    }
    const { signature, ...content } = value
    if (!verifyCanonical(value.origin, content, signature)) {
      throw new SignatureMismatchError('envelope signature does not verify against its origin', {
        origin: value.origin,
        id: value.id,
      })
    }
    const now = this.#now()
    const skew = value.ts - now
    const maxAge = Math.max(this.#maxSkewMs, options.maxAgeMs ?? 0) // store and forward (SPEC §10)
    if (skew > this.#maxSkewMs || -skew > maxAge) {
      throw new ClockSkewError('envelope timestamp is too far from this node’s clock', {
        ts: value.ts,
        now,
        skew,
        maxSkewMs: this.#maxSkewMs,
      })
    }
    if (!(await this.#seen.claim(seenKey(value), Math.max(value.ts, now) + this.#retentionMs))) {
      throw new ReplayError('envelope id was already received', { reason: 'duplicate', id: value.id })
    }
    return value
  }

  /** The batch operations that remember `envelope`'s id; commit them with its effect. */
  seenOperations(envelope: Envelope<Record<string, unknown>>): StoreOperation[] {
    return this.#seen.operations(seenKey(envelope), envelope.ts + this.#retentionMs)
  }

  /**
   * Applies `operations` (the message's effect) and remembers the envelope, all or
   * nothing. On failure nothing is remembered and the claim is taken back, so the
   * sender's retry is accepted.
   */
  async commit(
    envelope: Envelope<Record<string, unknown>>,
    operations: StoreOperation[] = [],
  ): Promise<void> {
    try {
      await this.#init.store.batch([...operations, ...this.seenOperations(envelope)])
    } catch (err) {
      await this.#seen.release(seenKey(envelope))
      throw err
    }
  }

  /**
   * Takes back the claim of a verified envelope that will not be applied, or whose
   * batch failed, so that the sender's retry is accepted. Harmless after a commit:
   * a stored id stays.
   */
  async release(envelope: Envelope<Record<string, unknown>>): Promise<void> {
    await this.#seen.release(seenKey(envelope))
  }

  /** Whether this envelope's id is remembered (committed). */
  async seen(envelope: Pick<Envelope, 'origin' | 'id'>): Promise<boolean> {
    return this.#seen.has(seenKey(envelope))
  }

  /** Forgets ids old enough that the clock check refuses them anyway; returns how many. */
  async prune(): Promise<number> {
    return this.#seen.prune(this.#now())
  }

  #parse(input: unknown): unknown {
    if (input instanceof Uint8Array) {
      if (input.byteLength > this.#maxBytes) throw tooLarge(input.byteLength, this.#maxBytes)
      return parseJson(Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8'))
    }
    if (typeof input === 'string') {
      const size = Buffer.byteLength(input)
      if (size > this.#maxBytes) throw tooLarge(size, this.#maxBytes)
      return parseJson(input)
    }
    let text: string | undefined
    try {
      text = JSON.stringify(input)
    } catch {
      throw new BadRequestError('envelope is not JSON')
    }
    if (text === undefined) throw new BadRequestError('envelope is not JSON')
    const size = Buffer.byteLength(text)
    if (size > this.#maxBytes) throw tooLarge(size, this.#maxBytes)
    return input
  }

  #isDid(did: string): boolean {
    if (this.#validDids.has(did)) return true
    if (!isDidKey(did)) return false
    if (this.#validDids.size >= 4096) this.#validDids.clear()
    this.#validDids.add(did)
    return true
  }
}

// Ids are scoped by origin: one mesh cannot burn another mesh's ids.
function seenKey(envelope: Pick<Envelope, 'origin' | 'id'>): string {
  return `${envelope.origin}/${envelope.id}`
}

function tooLarge(size: number, maxBytes: number): MeshError {
  return new TooLargeError('envelope is too large', { size, maxBytes })
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    throw new BadRequestError('envelope is not JSON')
  }
}

function bodyDepthWithin(root: unknown, maxDepth: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 1]]
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [value, depth] = item
    if (depth > maxDepth) return false
    if (Array.isArray(value)) {
      for (const v of value) if (typeof v === 'object' && v !== null) stack.push([v, depth + 1])
    } else if (typeof value === 'object' && value !== null) {
      for (const v of Object.values(value))
        if (typeof v === 'object' && v !== null) stack.push([v, depth + 1])
    }
  }
  return true
}
