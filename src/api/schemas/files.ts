import { INTEGER, STRING, strictObject } from './common.ts'

/**
 * Files in rooms (issue 18, SPEC §13): content-addressed blobs named by messages. The
 * node checks the same limits on entries from peers (src/rooms/attachments.ts).
 */
export const FILE_API_LIMITS = {
  maxAttachments: 10,
  maxNameLength: 255,
  maxMimeLength: 127,
} as const

/** A CID v1, raw, sha-256, base32 (`bafkrei…`, 59 characters). */
export const FILE_CID = { type: 'string', pattern: '^bafkrei[a-z2-7]{52}$' } as const

export const MIME = {
  type: 'string',
  maxLength: FILE_API_LIMITS.maxMimeLength,
  pattern: '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}$',
} as const

export const FILE_NAME = {
  type: 'string',
  minLength: 1,
  maxLength: FILE_API_LIMITS.maxNameLength,
  // no path, no control characters
  pattern: '^[^/\\\\\\u0000-\\u001f\\u007f]+$',
} as const

/** `{cid, name, size, mime}`: what an upload answers and a message names. */
export const attachmentSchema = strictObject(
  { cid: FILE_CID, name: FILE_NAME, size: { type: 'integer', minimum: 0 }, mime: MIME },
  ['cid', 'name', 'size', 'mime'],
)

export const attachmentsSchema = {
  type: 'array',
  minItems: 1,
  maxItems: FILE_API_LIMITS.maxAttachments,
  items: attachmentSchema,
} as const

/** The file's name and type go in the query; the body is its bytes (`application/octet-stream`). */
export const uploadQuerySchema = strictObject({ name: FILE_NAME, mime: MIME }, ['name'])

export const fileParamsSchema = strictObject({ cid: FILE_CID }, ['cid'])

/** `GET /api/files`: what this node holds of fetched files (its cache). */
export const fileCacheSchema = strictObject(
  {
    cached: { type: 'array', items: strictObject({ cid: STRING, size: INTEGER }, ['cid', 'size']) },
    cacheBytes: INTEGER,
    maxFileBytes: INTEGER,
  },
  ['cached', 'cacheBytes', 'maxFileBytes'],
)
