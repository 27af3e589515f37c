import type { AbortOptions } from '@libp2p/interface'
import { BadRequestError } from '../errors.ts'
import type { Sublevel } from '../store/index.ts'
import { ACTION_PATTERN, type AuditRow, isRowShaped } from './audit-row.ts'
import { ENTRIES_END, entryKey } from './log-keys.ts'

export interface AuditListQuery {
  /** Only rows with a greater seq; default 0 (from the start). */
  after?: number
  /** 1…500; default 100. */
  limit?: number
  /** Only rows whose action starts with this, e.g. `federation.connection.`. */
  action?: string
  /**
   * `newest`: newest first (where a person reads a log), from `before` (only rows with a
   * smaller seq; default: the end); `nextCursor` is then the next `before`.
   */
  order?: 'oldest' | 'newest'
  before?: number
}

export interface AuditPage {
  entries: AuditRow[]
  /** Pass as `after` for the next page; null when this page reached the end. */
  nextCursor: number | null
}

export const AUDIT_LIST_LIMITS = { defaultLimit: 100, maxLimit: 500 } as const

/** One page of rows in seq order (or newest first); MESH_BAD_REQUEST for a bad query. */
export async function listRows(
  sublevel: Sublevel,
  query: AuditListQuery = {},
  options: AbortOptions = {},
): Promise<AuditPage> {
  const after = query.after ?? 0
  const limit = query.limit ?? AUDIT_LIST_LIMITS.defaultLimit
  if (!Number.isSafeInteger(after) || after < 0) throw new BadRequestError('after must be a seq ≥ 0')
  if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_LIST_LIMITS.maxLimit) {
    throw new BadRequestError(`limit must be 1…${AUDIT_LIST_LIMITS.maxLimit}`)
  }
  if (query.action !== undefined && !ACTION_PATTERN.test(query.action)) {
    throw new BadRequestError('action must match [a-z0-9_.-]{1,128}')
  }
  const newest = query.order === 'newest'
  const before = query.before
  if (before !== undefined && (!Number.isSafeInteger(before) || before < 1))
    throw new BadRequestError('before must be a seq ≥ 1')
  const range = newest
    ? { gt: entryKey(after), lt: before === undefined ? ENTRIES_END : entryKey(before), reverse: true }
    : { gt: entryKey(after), lt: ENTRIES_END }
  const entries: AuditRow[] = []
  let more = false
  for await (const [, value] of sublevel.iterator(range)) {
    options.signal?.throwIfAborted()
    // A damaged row is still listed as found (verify says what is wrong with it),
    // unless it is not even row-shaped, in which case there is nothing to show.
    if (!isRowShaped(value)) continue
    if (query.action !== undefined && !value.action.startsWith(query.action)) continue
    if (entries.length === limit) {
      more = true
      break
    }
    entries.push(value)
  }
  const last = entries.at(-1)
  return { entries, nextCursor: more && last !== undefined ? last.seq : null }
}
