/**
 * The building blocks every route's schema shares. One definition each: a route that
 * needs a did, a UCAN or a page size takes it from here, so that two routes never
 * refuse the same input differently.
 */

/**
 * Any DID, by the W3C syntax (method, then method-specific id): trust decisions and
 * refusal filters name principals of any method (did:key, did:web, …).
 */
export const DID = {
  type: 'string',
  minLength: 8,
  maxLength: 512,
  pattern: '^did:[a-z0-9]+:[A-Za-z0-9._%:-]+$',
} as const

/** An Ed25519 did:key: meshes, and the humans and agents that sign in to one. */
export const DID_KEY = {
  type: 'string',
  maxLength: 128,
  pattern: '^did:key:z[1-9A-HJ-NP-Za-km-z]+$',
} as const

/** Unpadded base64url of at most `max` characters. */
export const b64url = (max: number) =>
  ({ type: 'string', minLength: 1, maxLength: max, pattern: '^[A-Za-z0-9_-]+$' }) as const

/**
 * A human's act: a UCAN chain (base64url CAR). 16 KiB, because an act is forwarded to the peer as an envelope's proof,
 * whose cap is 16 KiB (connections/envelope.ts `maxProofLength`): a larger one could be
 * accepted here and then never delivered.
 */
export const UCAN = b64url(16 * 1024)

/** A compact JWS (a verifiable credential as a JWT). */
export const JWT = {
  type: 'string',
  minLength: 1,
  maxLength: 8192,
  pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*$',
} as const

/** Verifiable credentials that come with an act (at most 16). */
export const CREDENTIALS = { type: 'array', maxItems: 16, items: JWT } as const

/** A verifiable presentation's largest encoding (the authority's TOKEN_LIMITS.maxEncodedLength). */
export const PRESENTATION = { type: 'string', maxLength: 96 * 1024 } as const

// Query values arrive as strings and the app does not coerce them: a page size is
// matched as digits here and range-checked by the module that owns the list.
export const PAGE_LIMIT = { type: 'string', pattern: '^[0-9]{1,3}$' } as const

// The plain scalars, for the (many) response fields with no bounds of their own.
export const STRING = { type: 'string' } as const
export const INTEGER = { type: 'integer' } as const
export const NUMBER = { type: 'number' } as const
export const BOOLEAN = { type: 'boolean' } as const

export const NULLABLE_STRING = { type: ['string', 'null'] } as const

/**
 * An object of exactly these properties, `required` among them; anything else is
 * refused (or, in a response, kept off the wire). The `const` type parameters keep the
 * literal schema, so `FromSchema` derives the same types as from a written-out one.
 */
export const strictObject = <
  const P extends Readonly<Record<string, unknown>>,
  const R extends readonly (keyof P & string)[],
>(
  properties: P,
  required: R,
) => ({ type: 'object', additionalProperties: false, required, properties }) as const

/** An object of these properties, each optional; anything else refused. */
export const optionalObject = <const P extends Readonly<Record<string, unknown>>>(properties: P) =>
  ({ type: 'object', additionalProperties: false, properties }) as const

/** An object that may be null, of exactly these properties (`required` among them). */
export const nullableObject = <
  const P extends Readonly<Record<string, unknown>>,
  const R extends readonly (keyof P & string)[],
>(
  properties: P,
  required: R,
) => ({ type: ['object', 'null'], additionalProperties: false, required, properties }) as const

/**
 * The query of a paged list: `after` (the cursor, of the list's own form), `limit`, and
 * the list's filters.
 */
export const pageQuery = <const A, const F extends Readonly<Record<string, unknown>> = Record<never, never>>(
  after: A,
  filters?: F,
) =>
  optionalObject({ after, limit: PAGE_LIMIT, ...filters } as {
    readonly after: A
    readonly limit: typeof PAGE_LIMIT
  } & F)

/**
 * One page of a list: `{<key>: [item], nextCursor}`, `nextCursor` null on the last page
 * (its type is the list's cursor).
 */
export const pageOf = <const K extends string, const I, const C>(key: K, items: I, cursor: C) =>
  strictObject(
    { [key]: { type: 'array', items }, nextCursor: cursor } as {
      readonly [P in K]: { readonly type: 'array'; readonly items: I }
    } & { readonly nextCursor: C },
    [key, 'nextCursor'],
  )

/** A whole list under one key: `{<key>: [item]}`. */
export const listOf = <const K extends string, const I>(key: K, items: I) =>
  strictObject(
    { [key]: { type: 'array', items } } as {
      readonly [P in K]: { readonly type: 'array'; readonly items: I }
    },
    [key],
  )

/** `{id}` in a path. */
export const idParams = <const S>(id: S) => strictObject({ id }, ['id'])

/** SPEC §3: the one error shape of every refusal. */
export const errorBodySchema = strictObject(
  {
    error: strictObject(
      {
        code: { type: 'string', pattern: '^MESH_[A-Z_]+$' },
        message: STRING,
        details: { type: 'object', additionalProperties: true },
      },
      ['code', 'message', 'details'],
    ),
  },
  ['error'],
)
