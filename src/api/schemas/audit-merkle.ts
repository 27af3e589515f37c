import { auditRowSchema } from './audit.ts'
import { DID_KEY, strictObject } from './common.ts'

/**
 * The audit log as a Merkle log (SPEC §11): signed tree heads and the inclusion and
 * consistency proofs that bind rows and heads together (audit/tree-head.ts and
 * audit/merkle.ts say what each field means).
 */

const HEX_HASH = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const
const SIZE = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const
/** A proof's path: one hash per level, at most 64 (a log of 2^53 rows needs 53). */
const PATH = { type: 'array', maxItems: 64, items: HEX_HASH } as const

/** A signed tree head: "the log of `mesh` had `size` rows, its Merkle root `root`", signed by `key` at `ts`. */
export const treeHeadSchema = strictObject(
  {
    mesh: DID_KEY,
    size: SIZE,
    root: HEX_HASH,
    ts: { type: 'string', maxLength: 32 },
    key: DID_KEY,
    sig: { type: 'string', pattern: '^[A-Za-z0-9_-]{86}$' },
  },
  ['mesh', 'size', 'root', 'ts', 'key', 'sig'],
)

/** Row `seq` is leaf `seq − 1` of the log of `size` rows whose root is `root`; `sth` the log's head now. */
export const inclusionProofSchema = strictObject(
  {
    mesh: DID_KEY,
    seq: SIZE,
    size: SIZE,
    root: HEX_HASH,
    leaf: HEX_HASH,
    path: PATH,
    row: auditRowSchema,
    sth: treeHeadSchema,
  },
  ['mesh', 'seq', 'size', 'root', 'leaf', 'path', 'row', 'sth'],
)

/** The log of `to` rows (root `toRoot`) extends the log of `from` rows (root `fromRoot`). */
export const consistencyProofSchema = strictObject(
  {
    mesh: DID_KEY,
    from: SIZE,
    to: SIZE,
    fromRoot: HEX_HASH,
    toRoot: HEX_HASH,
    path: PATH,
    sth: treeHeadSchema,
  },
  ['mesh', 'from', 'to', 'fromRoot', 'toRoot', 'path', 'sth'],
)

// Positions arrive as digits (the app does not coerce) and are range-checked by the log.
const POSITION = { type: 'string', pattern: '^[0-9]{1,16}$' } as const

export const inclusionQuerySchema = strictObject({ seq: POSITION, size: POSITION }, ['seq'])
export const consistencyQuerySchema = strictObject({ from: POSITION, to: POSITION }, ['from'])

/** An equivocation proof (audit/equivocation.ts): two signed heads of `mesh` that no consistency proof joins. */
export const equivocationProofSchema = strictObject(
  {
    v: { const: 1 },
    mesh: DID_KEY,
    older: treeHeadSchema,
    newer: treeHeadSchema,
    prefixRoot: { type: ['string', 'null'], pattern: '^[0-9a-f]{64}$' },
    path: PATH,
    rotation: { type: 'array', maxItems: 16, items: { type: 'object', additionalProperties: true } },
    foundBy: { type: 'string', maxLength: 256 },
    foundAt: { type: 'string', maxLength: 32 },
  },
  ['v', 'mesh', 'older', 'newer', 'prefixRoot', 'path', 'rotation', 'foundBy', 'foundAt'],
)

/** A mesh caught equivocating: the proof, when this node learned it, and from whom (`found` or `peer:<did>`). */
export const defectionSchema = strictObject(
  { mesh: DID_KEY, at: { type: 'string' }, source: { type: 'string' }, proof: equivocationProofSchema },
  ['mesh', 'at', 'source', 'proof'],
)

export const defectionListSchema = strictObject({ defections: { type: 'array', items: defectionSchema } }, [
  'defections',
])

export const defectionParamsSchema = strictObject({ did: DID_KEY }, ['did'])
