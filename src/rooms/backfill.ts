import type * as YT from 'yjs'
import { Y } from './lazy-yjs.ts' // issue 15: loaded on first use
import { ROOM_LIMITS } from './room-entries.ts'
import { BATCH_PREFIX, isBatchKey, isSealBatch, type SealBatch } from './seal-batch.ts' // issue 15, batch15
import { encodeStructs } from './update-structs.ts'

/**
 * Catch-up by state-vector diff, split into chunks a receiver accepts one by one.
 *
 * Every room item is a map entry written once (no origins, no deletions), so a set
 * of items is a complete Yjs update as long as, per client, it is a contiguous clock
 * range following what the receiver has. A chunk must also be acceptable to
 * `validateUpdate` on its own: each entry travels with its seal, each seal with its
 * entry, and each writing client id with its binding (or after it). `splitDiff` grows
 * a chunk by the closure of those dependencies, and closes it before it would hold
 * more than `maxEntries` entries or `maxBytes` bytes (a closure larger than that on
 * its own still goes out whole: it cannot be split).
 *
 * "Entries" are what the policy's `maxBackfillEventsPerRequest` counts: the items of
 * `meta`, `messages`, `reactions`, `redactions` and `members`. Seals and client
 * bindings ride along with the entries they belong to.
 */
export interface BackfillPlan {
  chunks: Uint8Array[]
  /** Entries in each chunk (same order as `chunks`). */
  entries: number[]
  totalEntries: number
  totalBytes: number
}

export interface SplitOptions {
  /** Most entries per chunk; default 1000 (the policy default). 0 means no limit. */
  maxEntries?: number
  /** Most bytes per chunk (estimated before encoding); default 3/4 of the update limit. */
  maxBytes?: number
  /**
   * Items (`map/key`) sent as holes of the same length: the peer's clocks stay
   * contiguous, it holds no content there (history-limit.ts).
   */
  hidden?: Set<string>
}

type Struct = YT.Item | YT.GC | YT.Skip
const RIDERS = new Set(['seals', 'clients'])

/** What `doc` holds beyond state vector `sv`, as chunks; no chunks when there is nothing. */
export function splitDiff(doc: YT.Doc, sv: Uint8Array | undefined, options: SplitOptions = {}): BackfillPlan {
  const diff = Y.encodeStateAsUpdate(doc, sv)
  return splitUpdate(diff, options)
}

/** Splits an update made of room items (see above) into chunks. */
export function splitUpdate(update: Uint8Array, options: SplitOptions = {}): BackfillPlan {
  const maxEntries =
    options.maxEntries === undefined || options.maxEntries <= 0 ? Infinity : options.maxEntries
  const maxBytes = options.maxBytes ?? Math.floor((ROOM_LIMITS.maxUpdateBytes * 3) / 4)
  const { structs } = Y.decodeUpdate(update) as { structs: Struct[] }
  const byClient = new Map<number, Array<YT.Item | YT.GC>>()
  const where = new Map<string, { client: number; index: number }>()
  let opaque = false
  for (const s of structs) {
    // A hole (a GC struct: an entry this replica refused) keeps its place and needs nothing.
    const hole = s instanceof Y.GC
    if (
      !hole &&
      (!(s instanceof Y.Item) || typeof s.parent !== 'string' || typeof s.parentSub !== 'string')
    ) {
      opaque = true
      continue
    }
    let list = byClient.get(s.id.client)
    if (list === undefined) {
      list = []
      byClient.set(s.id.client, list)
    }
    if (hole) {
      list.push(s as YT.GC)
      continue
    }
    const name = `${s.parent}/${s.parentSub}`
    if (options.hidden?.has(name)) {
      list.push(new Y.GC(s.id, s.length))
      continue
    }
    where.set(name, { client: s.id.client, index: list.length })
    list.push(s as YT.Item)
  }
  if (options.hidden !== undefined) hideBatches(byClient, where)
  if (structs.length === 0) return { chunks: [], entries: [], totalEntries: 0, totalBytes: 0 }
  // Something this splitter does not understand (it would be refused anyway): one piece.
  if (opaque) return { chunks: [update], entries: [0], totalEntries: 0, totalBytes: update.byteLength }

  const taken = new Map<number, number>() // client → items taken (committed or tentative)
  for (const client of byClient.keys()) taken.set(client, 0)
  const chunkStart = new Map<number, number>(taken)
  const chunks: Uint8Array[] = []
  const entries: number[] = []
  let chunkEntries = 0
  let chunkBytes = 0
  let totalEntries = 0

  const emit = () => {
    const parts = new Map<number, Array<YT.Item | YT.GC>>()
    for (const [client, list] of byClient) {
      const from = chunkStart.get(client) as number
      const to = taken.get(client) as number
      if (to > from) parts.set(client, list.slice(from, to))
      chunkStart.set(client, to)
    }
    chunks.push(encodeStructs(parts))
    entries.push(chunkEntries)
    chunkEntries = 0
    chunkBytes = 0
  }

  /** Takes (tentatively) everything item (client, index) needs; returns what was added. */
  const closure = (
    client: number,
    index: number,
  ): { added: Array<[number, number]>; entries: number; bytes: number } => {
    const added: Array<[number, number]> = []
    let n = 0
    let bytes = 0
    const work: Array<[number, number]> = [[client, index]]
    while (work.length > 0) {
      const [c, i] = work.pop() as [number, number]
      const list = byClient.get(c) as Array<YT.Item | YT.GC>
      const have = taken.get(c) as number
      if (i < have) continue
      taken.set(c, i + 1)
      added.push([c, have])
      for (let j = have; j <= i; j++) {
        const item = list[j] as YT.Item | YT.GC
        if (item instanceof Y.GC) {
          bytes += 8
          continue
        }
        const parent = item.parent as unknown as string
        const key = item.parentSub as string
        bytes += estimate(item)
        if (!RIDERS.has(parent)) n++
        const dep = (k: string) => {
          const at = where.get(k)
          if (at !== undefined) work.push([at.client, at.index])
        }
        if (parent === 'seals') dep(key)
        else dep(`seals/${parent}/${key}`)
        // batch15: an entry's batch seal needs its record; a record goes with its first entry.
        const value = (item.content as YT.ContentAny).arr?.[0] as
          | { batch?: unknown; entries?: unknown }
          | undefined
        if (parent === 'seals' && typeof value?.batch === 'string') dep(`seals/${BATCH_PREFIX}${value.batch}`)
        if (parent === 'seals' && isBatchKey(key) && isSealBatch(value)) dep(firstOf(value, where))
        dep(`clients/${c}`)
      }
    }
    return { added, entries: n, bytes }
  }

  const undo = (added: Array<[number, number]>) => {
    for (let k = added.length - 1; k >= 0; k--) {
      const [c, have] = added[k] as [number, number]
      taken.set(c, Math.min(taken.get(c) as number, have))
    }
  }

  for (const [client, list] of byClient) {
    for (let i = 0; i < list.length; i++) {
      if (i < (taken.get(client) as number)) continue
      let step = closure(client, i)
      const over = chunkEntries + step.entries > maxEntries || chunkBytes + step.bytes > maxBytes
      if (over && (chunkEntries > 0 || chunkBytes > 0)) {
        undo(step.added)
        emit()
        step = closure(client, i)
      }
      chunkEntries += step.entries
      chunkBytes += step.bytes
      totalEntries += step.entries
    }
  }
  if (chunkEntries > 0 || chunkBytes > 0) emit()
  const totalBytes = chunks.reduce((sum, c) => sum + c.byteLength, 0)
  return { chunks, entries, totalEntries, totalBytes }
}

/** The first entry of a record that goes out (hidden ones do not). */
function firstOf(record: SealBatch, where: Map<string, unknown>): string {
  const names = record.entries.map(([map, key]) => `${map}/${key}`)
  return names.find((n) => where.has(n)) ?? ''
}

/** batch15: a batch record none of whose entries goes out (history-limit.ts) goes as a hole too. */
function hideBatches(
  byClient: Map<number, Array<YT.Item | YT.GC>>,
  where: Map<string, { client: number; index: number }>,
) {
  for (const [name, at] of where) {
    if (!name.startsWith(`seals/${BATCH_PREFIX}`)) continue
    const list = byClient.get(at.client) as Array<YT.Item | YT.GC>
    const item = list[at.index] as YT.Item
    const record = (item.content as YT.ContentAny).arr?.[0]
    if (!isSealBatch(record) || record.entries.some(([map, key]) => where.has(`${map}/${key}`))) continue
    list[at.index] = new Y.GC(item.id, item.length)
    where.delete(name)
  }
}

/** Roughly the encoded size of a map item (its JSON value dominates). */
function estimate(item: YT.Item): number {
  const content = item.content as YT.ContentAny
  let value = 0
  try {
    value = JSON.stringify(content.arr?.[0] ?? null).length
  } catch {
    value = 64
  }
  return value + (item.parentSub?.length ?? 0) + 24
}

/** How many entries (not seals, not bindings) an update carries. */
export function countEntries(update: Uint8Array): number {
  let n = 0
  try {
    for (const s of (Y.decodeUpdate(update) as { structs: Struct[] }).structs) {
      if (s instanceof Y.Item && typeof s.parent === 'string' && !RIDERS.has(s.parent)) n++
    }
  } catch {
    return 0
  }
  return n
}
