import type { Attachment } from '../api/room-entries.ts'
import { isFileCid } from '../files/cid.ts'

/**
 * Files in rooms (issue 18): a message may name files by CID, `[{cid, name, size, mime}]`.
 * Its shape is checked like every other field of an entry, from clients and peers alike;
 * whether the bytes exist is the files module's business (they are fetched on demand).
 */
export const ATTACHMENT_LIMITS = {
  maxAttachments: 10,
  maxNameLength: 255,
  maxMimeLength: 127,
} as const

/** A MIME type as `type/subtype` (parameters left out). */
export const MIME_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}$/

/** A file name: no path, no control characters, not `.` or `..`. */
export function isFileName(v: unknown): v is string {
  return (
    typeof v === 'string' &&
    v.length >= 1 &&
    v.length <= ATTACHMENT_LIMITS.maxNameLength &&
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    !/[/\\\u0000-\u001f\u007f]/.test(v) &&
    v !== '.' &&
    v !== '..'
  )
}

export function isAttachment(v: unknown): v is Attachment {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const o = v as Record<string, unknown>
  const keys = Object.keys(o)
  return (
    keys.length === 4 &&
    keys.every((k) => k === 'cid' || k === 'name' || k === 'size' || k === 'mime') &&
    isFileCid(o.cid) &&
    isFileName(o.name) &&
    typeof o.size === 'number' &&
    Number.isSafeInteger(o.size) &&
    o.size >= 0 &&
    typeof o.mime === 'string' &&
    o.mime.length <= ATTACHMENT_LIMITS.maxMimeLength &&
    MIME_RE.test(o.mime)
  )
}

/** A message's `attachments`: absent, or 1..10 attachments with distinct CIDs. */
export function attachmentsOk(v: unknown): boolean {
  if (v === undefined) return true
  return (
    Array.isArray(v) &&
    v.length >= 1 &&
    v.length <= ATTACHMENT_LIMITS.maxAttachments &&
    v.every(isAttachment) &&
    new Set(v.map((a: Attachment) => a.cid)).size === v.length
  )
}

/** The CIDs a message entry names. */
export function attachmentCids(entry: { attachments?: Attachment[] }): string[] {
  return entry.attachments?.map((a) => a.cid) ?? []
}
