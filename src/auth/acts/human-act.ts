import { randomBytes } from 'node:crypto'
import { ForbiddenError, MeshError, ReplayError, SignatureMismatchError } from '../../errors.ts'
import {
  canonicalBytes,
  type Ed25519KeyPair,
  isDidKey,
  signCanonical,
  verifyCanonical,
} from '../../identity/index.ts'
import { lazyValidator } from '../../schema.ts'
import type { MeshStore, StoreOperation } from '../../store/index.ts'
import { SeenSet } from '../../store/index.ts'

/**
 * A human's signed act: the architect's consent to a federation step, signed with a
 * key the node never holds (the CLI signs it from the human keystore).
 *
 * ```
 * {act, iss, aud, with, nonce, iat, exp, sig}
 * ```
 *
 * - `act`: what is consented to, `namespace/verb` (see HUMAN_ACTS).
 * - `iss`: the human's did:key (the signer).
 * - `aud`: the mesh the act is addressed to — the human's own mesh, which carries out
 *   the act and forwards it to the peer as evidence that a human decided.
 * - `with`: the subject, a peer mesh did or a connection id.
 * - `nonce`: random, single use (base64url).
 * - `iat`, `exp`: issued-at and expiry, seconds since the epoch (as in JWT and UCAN).
 * - `sig`: `iss`'s Ed25519 signature (base64url) over the RFC 8785 canonical JSON of
 *   every other field.
 *
 * The encoded form (`encodeAct`) is the base64url of the act's canonical JSON: it fits
 * the HTTP API's `ucan` field and an envelope's `auth.proofs`. When the authority
 * issue replaces acts with UCAN chains, those tokens travel in the same places; a
 * decoded act is recognised by its `act` field.
 */
export const HUMAN_ACTS = {
  connect: 'mesh/connect',
  accept: 'connection/accept',
  decline: 'connection/decline',
  disconnect: 'connection/disconnect',
  /** The architect rotates the mesh key (with = the mesh's current did). */
  rotateKey: 'mesh/rotate-key',
  /** The architect shares a room with a peer mesh (with = `<room id>:<peer did>`), or a human opens a federated DM (with = `dm:<principal did>`). */
  roomShare: 'room/share',
  // paused links (issue 13)
  pause: 'connection/pause',
  resume: 'connection/resume',
} as const
export type KnownHumanAct = (typeof HUMAN_ACTS)[keyof typeof HUMAN_ACTS]

export const HUMAN_ACT_LIMITS = {
  /** Longest lifetime (exp − iat) accepted by default: nonces are kept until exp. */
  maxLifetimeSeconds: 7 * 24 * 3600,
  /** Lifetime given by `signAct` when none is asked for. */
  defaultTtlSeconds: 600,
  maxEncodedLength: 2048,
} as const

/** How far iat/exp may be off this node's clock by default. */
export const HUMAN_ACT_MAX_SKEW_MS = 60_000

export interface HumanActFields {
  act: string
  iss: string
  aud: string
  with: string
  nonce: string
  iat: number
  exp: number
}

export interface HumanAct extends HumanActFields {
  sig: string
}

const seconds = { type: 'integer', minimum: 0, maximum: 1e11 } as const

export const humanActSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['act', 'iss', 'aud', 'with', 'nonce', 'iat', 'exp', 'sig'],
  properties: {
    act: { type: 'string', maxLength: 64, pattern: '^[a-z][a-z0-9-]*/[a-z][a-z0-9-]*$' },
    iss: { type: 'string', maxLength: 128, pattern: '^did:key:z[1-9A-HJ-NP-Za-km-z]+$' },
    aud: { type: 'string', maxLength: 128, pattern: '^did:key:z[1-9A-HJ-NP-Za-km-z]+$' },
    with: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[\\x21-\\x7e]+$' },
    nonce: { type: 'string', pattern: '^[A-Za-z0-9_-]{16,64}$' },
    iat: seconds,
    exp: seconds,
    sig: { type: 'string', pattern: '^[A-Za-z0-9_-]{86}$' },
  },
} as const

const validateShape = lazyValidator<HumanAct>(humanActSchema)

export interface SignActOptions {
  act: string
  /** The mesh that will carry out the act (the signer's own mesh). */
  aud: string
  /** The subject: a peer mesh did or a connection id. */
  with: string
  /** Default 16 random bytes, base64url. */
  nonce?: string
  /** Default `now`. */
  iat?: number
  /** Default iat + ttlSeconds. */
  exp?: number
  /** Default 600 s. */
  ttlSeconds?: number
  /** The signer's clock in ms; default `Date.now()`. */
  now?: number
}

/** Signs an act with a human's key (`iss` is that key's did). */
export function signAct(humanKey: Ed25519KeyPair, options: SignActOptions): HumanAct {
  const iat = options.iat ?? Math.floor((options.now ?? Date.now()) / 1000)
  const fields: HumanActFields = {
    act: options.act,
    iss: humanKey.did,
    aud: options.aud,
    with: options.with,
    nonce: options.nonce ?? randomBytes(16).toString('base64url'),
    iat,
    exp: options.exp ?? iat + (options.ttlSeconds ?? HUMAN_ACT_LIMITS.defaultTtlSeconds),
  }
  return { ...fields, sig: signCanonical(humanKey, fields) }
}

/** The compact string form of an act: base64url of its canonical JSON. */
export function encodeAct(act: HumanAct): string {
  return Buffer.from(canonicalBytes(act)).toString('base64url')
}

/** Decodes and shape-checks an encoded act (signature not checked); MESH_UCAN_INVALID otherwise. */
export function decodeAct(encoded: string): HumanAct {
  if (typeof encoded !== 'string' || encoded.length > HUMAN_ACT_LIMITS.maxEncodedLength) {
    throw invalid('encoded act is not a string of acceptable length')
  }
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) throw invalid('encoded act is not base64url')
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'))
  } catch {
    throw invalid('encoded act is not JSON')
  }
  return checkShape(value)
}

export interface VerifyActOptions {
  /** The mesh the act must be addressed to. */
  audience: string
  /** Whether `iss` may do this: e.g. "is this mesh's architect". */
  allowedIssuers: (did: string) => boolean | Promise<boolean>
  /** The act expected, e.g. `connection/accept`. */
  act: string
  /** The subject expected: the peer mesh did or connection id being acted on. */
  subject: string
  /** The clock to judge iat/exp by, ms; default the verifier's. */
  now?: number
}

export interface HumanActVerifierInit {
  store: MeshStore
  /** Allowed clock difference on iat and exp; default 60 s. */
  maxSkewMs?: number
  /** Longest accepted exp − iat; default 7 days. */
  maxLifetimeSeconds?: number
  /** default `Date.now` */
  now?: () => number
}

/**
 * Verifies human acts and remembers their nonces (in the `envelopes` sublevel,
 * namespace `act`) so that an act is used once, also across restarts.
 *
 * Refusals are thrown, as by the envelope verifier: every caller is a gate, and an
 * exception cannot be forgotten the way an unchecked `{error}` can.
 *
 * Like the envelope verifier, `verify` writes nothing and claims the nonce; the
 * caller commits `nonceOperations(act)` with the act's effect (or calls `commit`),
 * or `release`s an act it does not carry out. One verifier per store.
 */
export class HumanActVerifier {
  readonly #store: MeshStore
  readonly #maxSkewMs: number
  readonly #maxLifetime: number
  readonly #now: () => number
  readonly #nonces: SeenSet

  constructor(init: HumanActVerifierInit) {
    this.#store = init.store
    this.#maxSkewMs = init.maxSkewMs ?? HUMAN_ACT_MAX_SKEW_MS
    this.#maxLifetime = init.maxLifetimeSeconds ?? HUMAN_ACT_LIMITS.maxLifetimeSeconds
    this.#now = init.now ?? Date.now
    this.#nonces = new SeenSet({ store: init.store, namespace: 'act' })
  }

  /**
   * Checks an act (encoded or decoded), in this order:
   * shape, act, audience, subject, time bounds (iat ≤ now + skew, exp ≥ now − skew,
   * 0 < exp − iat ≤ max lifetime) → MESH_UCAN_INVALID; signature by `iss` →
   * MESH_SIGNATURE_MISMATCH; `iss` not allowed → MESH_FORBIDDEN; nonce used →
   * MESH_REPLAY. Returns the decoded act.
   */
  async verify(input: string | HumanAct, options: VerifyActOptions): Promise<HumanAct> {
    const act = typeof input === 'string' ? decodeAct(input) : checkShape(input)
    if (act.act !== options.act)
      throw invalid('act is not the one expected', { act: act.act, expected: options.act })
    if (act.aud !== options.audience) {
      throw invalid('act is addressed to another mesh', { aud: act.aud, expected: options.audience })
    }
    if (act.with !== options.subject) {
      throw invalid('act is about another subject', { with: act.with, expected: options.subject })
    }
    const nowMs = options.now ?? this.#now()
    const skew = this.#maxSkewMs / 1000
    const now = nowMs / 1000
    if (act.iat > now + skew)
      throw invalid('act is issued in the future', { iat: act.iat, now: Math.floor(now) })
    if (act.exp < now - skew) throw invalid('act has expired', { exp: act.exp, now: Math.floor(now) })
    if (act.exp <= act.iat || act.exp - act.iat > this.#maxLifetime) {
      throw invalid('act lifetime is out of bounds', {
        iat: act.iat,
        exp: act.exp,
        maxLifetimeSeconds: this.#maxLifetime,
      })
    }
    const { sig, ...fields } = act
    if (!isDidKey(act.iss) || !verifyCanonical(act.iss, fields, sig)) {
      throw new SignatureMismatchError('act signature does not verify against its issuer', { iss: act.iss })
    }
    if (!(await options.allowedIssuers(act.iss))) {
      throw new ForbiddenError('the issuer of this act may not do this', { iss: act.iss, act: act.act })
    }
    if (!(await this.#nonces.claim(nonceKey(act), this.#forgetAt(act)))) {
      throw new ReplayError('act nonce was already used', { reason: 'nonce', iss: act.iss, nonce: act.nonce })
    }
    return act
  }

  /** The batch operations that spend `act`'s nonce; commit them with the act's effect. */
  nonceOperations(act: HumanAct): StoreOperation[] {
    return this.#nonces.operations(nonceKey(act), this.#forgetAt(act))
  }

  /** Applies `operations` and spends the nonce, all or nothing. */
  async commit(act: HumanAct, operations: StoreOperation[] = []): Promise<void> {
    try {
      await this.#store.batch([...operations, ...this.nonceOperations(act)])
    } catch (err) {
      await this.#nonces.release(nonceKey(act))
      throw err
    }
  }

  /** Takes back the claim of a verified act that was not carried out (or whose batch failed). */
  async release(act: HumanAct): Promise<void> {
    await this.#nonces.release(nonceKey(act))
  }

  // Kept past exp by two skews and a margin, like envelope ids: after that the time
  // check refuses the act even if this node's clock stepped back.
  #forgetAt(act: HumanAct): number {
    return act.exp * 1000 + 2 * this.#maxSkewMs + 60_000
  }

  /** Forgets nonces of acts that expired long enough ago; returns how many. */
  async prune(): Promise<number> {
    return this.#nonces.prune(this.#now())
  }
}

function nonceKey(act: HumanAct): string {
  return `${act.iss}/${act.nonce}`
}

function checkShape(value: unknown): HumanAct {
  if (!validateShape(value)) {
    const first = validateShape.errors?.[0]
    throw invalid(`invalid act: ${first?.instancePath || '/'} ${first?.message ?? ''}`.trim(), {
      validation: first,
    })
  }
  return value
}

function invalid(message: string, details: Record<string, unknown> = {}): MeshError {
  return new MeshError('MESH_UCAN_INVALID', message, details)
}
