import {
  BOOLEAN,
  b64url,
  DID_KEY,
  INTEGER,
  nullableObject,
  optionalObject,
  STRING,
  strictObject,
} from './common.ts'

/** Coordination fees (SPEC §10): relay receipts and the ledger a relay keeps of them. */

/** A non-negative count or a time in ms since the epoch. */
const COUNT = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const

/**
 * A receipt, signed by the beneficiary (the mesh whose relayed traffic it covers): `bytes`
 * and `messages` crossed its circuits through `relay` in the interval `[from, to)` (ms since
 * the epoch). Receipt `seq` n+1 starts where n ended (`from` = n's `to`); `sig` is the
 * beneficiary's Ed25519 signature (base64url) over the RFC 8785 form of the other fields.
 */
export const receiptSchema = strictObject(
  {
    relay: DID_KEY,
    beneficiary: DID_KEY,
    bytes: COUNT,
    messages: COUNT,
    from: COUNT,
    to: COUNT,
    seq: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    sig: b64url(128),
  },
  ['relay', 'beneficiary', 'bytes', 'messages', 'from', 'to', 'seq', 'sig'],
)

/** Why a relay stopped serving a beneficiary. */
const cutOffSchema = nullableObject({ code: STRING, at: STRING }, ['code', 'at'])

/** One beneficiary of this relay: what it measured, what was receipted, and the policy's verdict. */
export const ledgerBeneficiarySchema = strictObject(
  {
    did: DID_KEY,
    peerId: STRING,
    /** Measured by this relay since it started (both directions). */
    measuredBytes: INTEGER,
    measuredMessages: INTEGER,
    circuits: INTEGER,
    /** Receipts held (all time) and what they cover. */
    receipts: INTEGER,
    receiptedBytes: INTEGER,
    receiptedMessages: INTEGER,
    lastSeq: INTEGER,
    /** Measured since start and not covered by a receipt taken since start. */
    unreceiptedBytes: INTEGER,
    /** Receipts refused on arrival (forged, replayed, inflated, out of order). */
    refused: INTEGER,
    /** Every receipt held verifies (signature, seq, contiguity, totals). */
    verified: BOOLEAN,
    cutOff: cutOffSchema,
  },
  [
    'did',
    'peerId',
    'measuredBytes',
    'measuredMessages',
    'circuits',
    'receipts',
    'receiptedBytes',
    'receiptedMessages',
    'lastSeq',
    'unreceiptedBytes',
    'refused',
    'verified',
    'cutOff',
  ],
)

/** One relay this mesh's traffic crossed, as the beneficiary sees it. */
export const ledgerRelaySchema = strictObject(
  {
    did: DID_KEY,
    peerId: STRING,
    measuredBytes: INTEGER,
    measuredMessages: INTEGER,
    /** Receipts signed and taken by the relay, and what they cover. */
    receipts: INTEGER,
    receiptedBytes: INTEGER,
    lastSeq: INTEGER,
    /** The relay's last refusal, its code. */
    lastError: { type: ['string', 'null'] },
  },
  [
    'did',
    'peerId',
    'measuredBytes',
    'measuredMessages',
    'receipts',
    'receiptedBytes',
    'lastSeq',
    'lastError',
  ],
)

/**
 * `GET /api/ledger[?receipts=true]`: as a relay, each beneficiary; as a beneficiary, each
 * relay; with `receipts=true`, every receipt held (the export `mesh ledger --verify --file` checks).
 */
export const ledgerSchema = strictObject(
  {
    did: DID_KEY,
    relaying: BOOLEAN,
    /** Bytes a beneficiary may leave unreceipted before it is cut off. */
    freeBytes: INTEGER,
    /** Whether this mesh signs receipts for the relays it uses. */
    signing: BOOLEAN,
    beneficiaries: { type: 'array', items: ledgerBeneficiarySchema },
    relays: { type: 'array', items: ledgerRelaySchema },
    receipts: { type: 'array', items: receiptSchema },
  },
  ['did', 'relaying', 'freeBytes', 'signing', 'beneficiaries', 'relays'],
)

export const ledgerQuerySchema = optionalObject({ receipts: { type: 'string', enum: ['true', 'false'] } })
