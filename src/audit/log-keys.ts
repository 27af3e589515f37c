/**
 * Keys in the 'audit' sublevel. Seqs are zero-padded to the 16 digits of
 * Number.MAX_SAFE_INTEGER so that key order is seq order. The head key sorts after
 * every entry key, so one iterator (one LevelDB snapshot) reads rows and head together.
 */

import { type AuditHead, HASH_PATTERN } from './audit-row.ts'

export const ENTRY_PREFIX = 'entry/v1/'
/** Past every entry key: the end of an iterator over the rows. */
export const ENTRIES_END = `${ENTRY_PREFIX}~`
export const HEAD_KEY = 'head/v1'
const SEQ_DIGITS = 16
export const entryKey = (seq: number): string => `${ENTRY_PREFIX}${String(seq).padStart(SEQ_DIGITS, '0')}`
export const ENTRY_KEY_PATTERN = /^entry\/v1\/(\d{16})$/
/** Checkpoints held of peer meshes' logs: after HEAD_KEY, so outside what verify walks. */
export const PEER_PREFIX = 'peer/v1/'
/** What this node holds of other meshes' Merkle logs (audit/head-book.ts): after the tree keys. */
export const WATCH_PREFIX = 'watch/v1/'

/** Whether a stored value is a head: a seq ≥ 1 and a hash. */
export function isHead(value: unknown): value is AuditHead {
  const v = value as Partial<AuditHead> | null | undefined
  return (
    typeof v === 'object' &&
    v !== null &&
    Number.isSafeInteger(v.seq) &&
    (v.seq as number) >= 1 &&
    typeof v.hash === 'string' &&
    HASH_PATTERN.test(v.hash)
  )
}
