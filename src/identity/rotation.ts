import { BadRequestError, ClockSkewError, ReplayError, SignatureMismatchError } from '../errors.ts'
import { lazyValidator } from '../schema.ts'
import type { Ed25519KeyPair } from './keys.ts'
import { isDidKey } from './keys.ts'
import { signCanonical, verifyCanonical } from './signed-json.ts'

/**
 * Key rotation. A mesh's did:key is its key and its PeerId, so a new key is a new did.
 * What stays is the mesh's **identity**: the did of its first (genesis) key. Every
 * later key is introduced by a rotation record:
 *
 * ```
 * {v:1, type:'mesh/key-rotation', identity, previous, next, seq, ts, sigPrevious, sigNext}
 * ```
 *
 * - `identity`: the genesis did; `previous`: the key being retired; `next`: the new key.
 * - `seq`: 1 for the first rotation, +1 each time; `ts`: ms since the epoch.
 * - `sigPrevious`: `previous`'s Ed25519 signature (base64url) over the RFC 8785 form of
 *   `{v, type, identity, previous, next, seq, ts}` — the old key hands over.
 * - `sigNext`: `next`'s signature over the same fields plus `sigPrevious` — the new key
 *   proves it exists and accepts the hand-over (no key can be named without its consent).
 *
 * The records from seq 1 up form the mesh's **chain**: `chain[0].previous` is the
 * identity and each `previous` is the `next` before it. A peer accepts a new key only
 * through a valid chain that extends a key it already holds as the mesh's current one
 * (`extendKnownKeys`), never because an envelope claims it.
 */
export const KEY_ROTATION_TYPE = 'mesh/key-rotation'

/** Longest chain accepted anywhere (records, heartbeats, envelopes); a yearly rotation never gets near it. */
export const MAX_ROTATION_CHAIN = 16

/** How far a record's `ts` may lie in the verifier's future. */
export const ROTATION_MAX_SKEW_MS = 60_000

export interface RotationRecordContent {
  v: 1
  type: typeof KEY_ROTATION_TYPE
  identity: string
  previous: string
  next: string
  seq: number
  ts: number
}

export interface RotationRecord extends RotationRecordContent {
  sigPrevious: string
  sigNext: string
}

const DID_KEY = { type: 'string', maxLength: 128, pattern: '^did:key:z[1-9A-HJ-NP-Za-km-z]+$' } as const
const SIGNATURE = { type: 'string', pattern: '^[A-Za-z0-9_-]{86}$' } as const

/** The JSON Schema of one record, shared by every place a chain travels (heartbeat, DHT record, envelope). */
export const rotationRecordSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['v', 'type', 'identity', 'previous', 'next', 'seq', 'ts', 'sigPrevious', 'sigNext'],
  properties: {
    v: { const: 1 },
    type: { const: KEY_ROTATION_TYPE },
    identity: DID_KEY,
    previous: DID_KEY,
    next: DID_KEY,
    seq: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    ts: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    sigPrevious: SIGNATURE,
    sigNext: SIGNATURE,
  },
} as const

/** A chain as it travels: at most MAX_ROTATION_CHAIN records. */
export const rotationChainSchema = {
  type: 'array',
  maxItems: MAX_ROTATION_CHAIN,
  items: rotationRecordSchema,
} as const

const validateRecordShape = lazyValidator<RotationRecord>(rotationRecordSchema)

function contentOf(record: RotationRecordContent): RotationRecordContent {
  return {
    v: 1,
    type: KEY_ROTATION_TYPE,
    identity: record.identity,
    previous: record.previous,
    next: record.next,
    seq: record.seq,
    ts: record.ts,
  }
}

/** The record by which `previous` hands the mesh `identity` over to `next`, signed by both. */
export function createRotationRecord(
  previous: Ed25519KeyPair,
  next: Ed25519KeyPair,
  options: { identity: string; seq: number; ts?: number },
): RotationRecord {
  if (previous.did === next.did) throw new BadRequestError('a rotation needs a new key')
  const content = contentOf({
    v: 1,
    type: KEY_ROTATION_TYPE,
    identity: options.identity,
    previous: previous.did,
    next: next.did,
    seq: options.seq,
    ts: options.ts ?? Date.now(),
  })
  const sigPrevious = signCanonical(previous, content)
  const sigNext = signCanonical(next, { ...content, sigPrevious })
  return { ...content, sigPrevious, sigNext }
}

/**
 * Checks one record on its own: shape (unknown fields refused → MESH_BAD_REQUEST), both
 * signatures (MESH_SIGNATURE_MISMATCH), not stamped in the future (MESH_CLOCK_SKEW).
 */
export function verifyRotationRecord(value: unknown, options: { now?: number } = {}): RotationRecord {
  if (!validateRecordShape(value)) {
    const first = validateRecordShape.errors?.[0]
    throw new BadRequestError(
      `invalid rotation record: ${first?.instancePath || '/'} ${first?.message ?? ''}`.trim(),
      { validation: first },
    )
  }
  if (!isDidKey(value.identity) || !isDidKey(value.previous) || !isDidKey(value.next)) {
    throw new BadRequestError('rotation record dids must be Ed25519 did:key')
  }
  if (value.previous === value.next) throw new BadRequestError('rotation record names one key twice')
  const content = contentOf(value)
  if (!verifyCanonical(value.previous, content, value.sigPrevious)) {
    throw new SignatureMismatchError('rotation record is not signed by the previous key', {
      previous: value.previous,
      seq: value.seq,
    })
  }
  if (!verifyCanonical(value.next, { ...content, sigPrevious: value.sigPrevious }, value.sigNext)) {
    throw new SignatureMismatchError('rotation record is not signed by the next key', {
      next: value.next,
      seq: value.seq,
    })
  }
  const now = options.now ?? Date.now()
  if (value.ts > now + ROTATION_MAX_SKEW_MS) {
    throw new ClockSkewError('rotation record is stamped in the future', { ts: value.ts, now })
  }
  return value
}

/** A verified chain: the identity and every key it names, oldest first (the last is current). */
export interface VerifiedChain {
  identity: string
  keys: string[]
  records: RotationRecord[]
}

/**
 * Verifies a whole chain for `identity` (or the identity its records name, when not
 * given): every record valid, seqs 1…n in order, the first handing over from the
 * identity itself, each from the key the one before introduced, `ts` never going back,
 * no key named twice. An empty chain is the identity alone.
 */
export function verifyRotationChain(
  value: unknown,
  options: { identity?: string; now?: number } = {},
): VerifiedChain {
  if (!Array.isArray(value)) throw new BadRequestError('a rotation chain is an array of records')
  if (value.length > MAX_ROTATION_CHAIN) {
    throw new BadRequestError(`a rotation chain has at most ${MAX_ROTATION_CHAIN} records`, {
      length: value.length,
    })
  }
  const records = value.map((r) => verifyRotationRecord(r, options))
  const identity = options.identity ?? records[0]?.identity
  if (identity === undefined) throw new BadRequestError('an empty rotation chain names no identity')
  const keys = [identity]
  let ts = 0
  for (const [i, record] of records.entries()) {
    const expected = keys.at(-1) as string
    if (record.identity !== identity) {
      throw new SignatureMismatchError('rotation record belongs to another identity', {
        identity,
        named: record.identity,
        seq: record.seq,
      })
    }
    if (record.seq !== i + 1) {
      throw new BadRequestError('rotation chain is not in seq order from 1', { index: i, seq: record.seq })
    }
    if (record.previous !== expected) {
      throw new SignatureMismatchError('rotation chain is broken: a record does not follow the key before', {
        seq: record.seq,
        expected,
        previous: record.previous,
      })
    }
    if (keys.includes(record.next)) {
      throw new ReplayError('rotation chain names a key twice', { reason: 'key-reused', seq: record.seq })
    }
    if (record.ts < ts) throw new BadRequestError('rotation chain goes back in time', { seq: record.seq })
    ts = record.ts
    keys.push(record.next)
  }
  return { identity, keys, records }
}

/**
 * What a verified chain adds to the keys a peer already holds for a mesh (oldest first,
 * the last being the key it treats as current). The chain must name that current key:
 * only a hand-over signed by it (and onwards) introduces a key. The keys after it are
 * returned; none when the chain ends there (a replayed old chain changes nothing).
 * A chain that does not name the current key — a fork signed by an older, retired key,
 * or a chain of another mesh — is refused with MESH_SIGNATURE_MISMATCH.
 */
export function extendKnownKeys(known: readonly string[], chain: VerifiedChain): string[] {
  const current = known.at(-1)
  if (current === undefined) throw new BadRequestError('no key is known for this mesh')
  const at = chain.keys.lastIndexOf(current)
  if (at < 0) {
    throw new SignatureMismatchError(
      'the rotation chain does not continue from the key known for this mesh',
      {
        known: current,
        identity: chain.identity,
      },
    )
  }
  // The part of the chain up to the current key must not contradict what is known.
  for (const key of chain.keys.slice(0, at)) {
    if (!known.includes(key) && known.includes(chain.identity)) {
      throw new SignatureMismatchError('the rotation chain disagrees with the key history known', { key })
    }
  }
  return chain.keys.slice(at + 1)
}
