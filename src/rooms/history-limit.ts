import type * as Y from 'yjs'
import type { MessageEntry, ReactionEntry } from './room-entries.ts'

/**
 * The history a newly sharing peer receives (SPEC §9, policy `backfillLimit`).
 *
 * History is what the room held when the share was decided: the messages dated at or
 * before `decidedAt`. Of those, only the last `limit` (by date, then id) go out as
 * content; `null` means all of them, `0` none. A hidden message keeps its place in
 * the catch-up as a hole (a GC struct of the same length: backfill.ts), so the peer's
 * clocks stay contiguous but it never holds the content; its seal, and the reactions
 * and redactions of it, are hidden with it. Meta, members and client bindings always
 * travel: the peer needs them to check what it is given.
 *
 * Only the home mesh hides history: a peer accepts holes only from a mesh that answers
 * for the client that wrote them, and the home mesh answers for every client of its
 * room (validate-update.ts).
 */
export interface HistoryLimit {
  /** When the share was decided (ms): entries dated at or before it are history. */
  decidedAt: number
  /** How many messages of history the peer gets; null: all. */
  limit: number | null
}

/** The keys (`map/key`, as backfill.ts names items) a catch-up sends as holes; undefined: none. */
export function hiddenHistory(doc: Y.Doc, history: HistoryLimit): Set<string> | undefined {
  if (history.limit === null) return undefined
  const old: Array<{ id: string; ts: number }> = []
  doc.getMap<MessageEntry>('messages').forEach((value, id) => {
    if (typeof value?.ts === 'number' && value.ts <= history.decidedAt) old.push({ id, ts: value.ts })
  })
  old.sort((a, b) => a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const hiddenMessages = new Set(old.slice(0, Math.max(0, old.length - history.limit)).map((m) => m.id))
  if (hiddenMessages.size === 0) return undefined
  const hidden = new Set<string>()
  const hide = (map: string, key: string) => {
    hidden.add(`${map}/${key}`)
    hidden.add(`seals/${map}/${key}`)
  }
  for (const id of hiddenMessages) hide('messages', id)
  for (const map of ['reactions', 'redactions'] as const) {
    doc.getMap<ReactionEntry>(map).forEach((value, key) => {
      if (typeof value?.message === 'string' && hiddenMessages.has(value.message)) hide(map, key)
    })
  }
  return hidden
}
