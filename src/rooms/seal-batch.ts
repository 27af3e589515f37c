import type * as YT from 'yjs'
import type { BatchSeal, Seal, SealBatch } from '../api/room-entries.ts'
import { canonicalJson, type Ed25519KeyPair, isDidKey } from '../identity/index.ts'
import type { MeshKey } from './mesh-keys.ts'
import {
  contentAddressed,
  contentId,
  isEntryId,
  ROOM_LIMITS,
  SEALED_MAPS,
  type SealedMapName,
  sealKey,
  type VerifiedSeals,
  verifyText,
} from './room-entries.ts'
import { type LeafSignature, leafOf, treeOk, treeSignedText } from './seal-tree.ts'
import { refuse } from './update-refusal.ts'
import type { RawWrite } from './update-structs.ts'

/**
 * Issue 15 (batch15): one signature for the entries one transaction seals.
 *
 * When the node's transaction seals two entries or more (the writes of one event-loop
 * turn, room.ts), `seals` gets one batch record, key `batch/<id>`, value
 * `{mesh, key?, entries: [[map, key, hash], …], sig}`, `sig` over the JCS of
 * `{room, batch: entries}` (`mesh` too when signed by a later key, as for seals), and
 * `<id>` = base64url(sha256(those same JCS bytes)): an id names what it signs, so a
 * record cannot be replayed under another id, nor into another room. Each entry's seal
 * is then `{mesh, key?, hash, batch: <id>, i}`: `entries[i]` must be exactly its
 * `[map, key, hash]`. See README-layout.md.
 *
 * Issue 15 (posts15): a record may be a leaf of a tree whose one signature covers the
 * records of several rooms (seal-tree.ts): it then carries `at` and `path`.
 */

export type { BatchSeal, SealBatch }

export const BATCH_PREFIX = 'batch/'
/** Most entries one batch record lists (the origin starts another transaction beyond). */
export const MAX_BATCH_ENTRIES = 1024
/** A transaction sealing this many entries or more gets a batch record. */
export const BATCH_MIN_ENTRIES = 2

const SIG_RE = /^[A-Za-z0-9_-]{86}$/
const MAP_NAMES: ReadonlySet<string> = new Set(SEALED_MAPS)
/** Longest entry key a record may list (content ids are 43, client ids ≤ 16, meta "room"). */
const MAX_KEY = 64

export function isBatchKey(sealKeyOrKey: string): boolean {
  return sealKeyOrKey.startsWith(BATCH_PREFIX)
}

/** The JCS text a batch record's signature covers (its id is this text's hash). */
export function batchPayloadText(room: string, entries: SealBatch['entries'], mesh?: string): string {
  return canonicalJson(mesh === undefined ? { room, batch: entries } : { room, batch: entries, mesh })
}

export function batchIdOf(text: string): string {
  return leafOf(text)
}

/** What a batch record lists and its id, before it is signed. */
export interface BatchLeaf {
  room: string
  listed: SealBatch['entries']
  /** The JCS text the id hashes (and a record without a tree signs). */
  text: string
  id: string
}

/** Lists `entries` for a record of room `room` sealed for `mesh` by key `signer`. */
export function batchLeaf(
  room: string,
  entries: ReadonlyArray<{ map: SealedMapName; key: string; value: unknown }>,
  mesh: string,
  signer: string,
): BatchLeaf {
  const listed: SealBatch['entries'] = entries.map((e) => [
    e.map,
    e.key,
    contentAddressed(e.map) ? e.key : contentId(e.value),
  ])
  const text = batchPayloadText(room, listed, mesh === signer ? undefined : mesh)
  return { room, listed, text, id: batchIdOf(text) }
}

/** A record and its entries' seals from a leaf and its signature. */
export function sealedBatch(
  leaf: BatchLeaf,
  signed: { sig: string } | LeafSignature,
  mesh: string,
  signer: string,
): { recordKey: string; record: SealBatch; seals: BatchSeal[] } {
  const own = mesh === signer
  const tree = 'path' in signed ? { at: signed.at, path: signed.path } : {}
  const record: SealBatch = own
    ? { mesh, entries: leaf.listed, ...tree, sig: signed.sig }
    : { mesh, key: signer, entries: leaf.listed, ...tree, sig: signed.sig }
  const seals = leaf.listed.map(
    ([, , hash], i): BatchSeal =>
      own ? { mesh, hash, batch: leaf.id, i } : { mesh, key: signer, hash, batch: leaf.id, i },
  )
  return { recordKey: `${BATCH_PREFIX}${leaf.id}`, record, seals }
}

function signText(key: Ed25519KeyPair, text: string): string {
  return Buffer.from(key.sign(Buffer.from(text, 'utf8'))).toString('base64url')
}

/**
 * Seals `entries` under one record for `mesh` with `key`: the record's `seals` key and
 * value, and each entry's seal (same order).
 */
export function makeBatch(
  key: Ed25519KeyPair,
  room: string,
  entries: Array<{ map: SealedMapName; key: string; value: unknown }>,
  mesh: string = key.did,
): { recordKey: string; record: SealBatch; seals: BatchSeal[] } {
  const leaf = batchLeaf(room, entries, mesh, key.did)
  return sealedBatch(leaf, { sig: signText(key, leaf.text) }, mesh, key.did)
}

function isObj(v: unknown): v is Record<string, unknown> {
  return (
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
  )
}

function keysAre(o: Record<string, unknown>, required: readonly string[], ...optional: string[]): boolean {
  const keys = Object.keys(o)
  return required.every((k) => k in o) && keys.every((k) => required.includes(k) || optional.includes(k))
}

function signerOk(v: Record<string, unknown>): boolean {
  return isDidKey(v.mesh) && (v.key === undefined || (isDidKey(v.key) && v.key !== v.mesh))
}

export function isBatchSeal(v: unknown): v is BatchSeal {
  return (
    isObj(v) &&
    keysAre(v, ['mesh', 'hash', 'batch', 'i'], 'key') &&
    signerOk(v) &&
    isEntryId(v.hash) &&
    isEntryId(v.batch) &&
    typeof v.i === 'number' &&
    Number.isInteger(v.i) &&
    v.i >= 0 &&
    v.i < MAX_BATCH_ENTRIES
  )
}

/** A batch record's shape: 1 to MAX_BATCH_ENTRIES distinct `[map, key, hash]`. */
export function isSealBatch(v: unknown): v is SealBatch {
  if (!isObj(v) || !keysAre(v, ['mesh', 'entries', 'sig'], 'key', 'at', 'path') || !signerOk(v)) return false
  if (typeof v.sig !== 'string' || !SIG_RE.test(v.sig) || !treeOk(v.at, v.path)) return false
  const list = v.entries
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_BATCH_ENTRIES) return false
  const seen = new Set<string>()
  for (const e of list) {
    if (!Array.isArray(e) || e.length !== 3) return false
    const [map, key, hash] = e as unknown[]
    if (typeof map !== 'string' || !MAP_NAMES.has(map)) return false
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY || !isEntryId(hash)) return false
    const at = `${map}/${key}`
    if (seen.has(at)) return false
    seen.add(at)
  }
  return true
}

/** The key whose signature a record carries. */
export function batchSigner(record: SealBatch): string {
  return record.key ?? record.mesh
}

/**
 * The text a record's signature covers, given that its id is `id`: its own payload, or (a
 * record in a tree) the root its leaf and path lead to. Undefined when the id is not the
 * hash of its payload for room `room` (another room's, or another list's).
 */
export function batchSignedText(record: SealBatch, id: string, room: string): string | undefined {
  let text: string
  try {
    text = batchPayloadText(room, record.entries, record.key === undefined ? undefined : record.mesh)
  } catch {
    return undefined
  }
  if (batchIdOf(text) !== id) return undefined
  if (record.path === undefined) return text
  return treeSignedText(
    id,
    record.at as number,
    record.path,
    record.key === undefined ? undefined : record.mesh,
  )
}

/**
 * Whether `record`, stored under `batch/<id>`, is signed by its signer for room `room`
 * and named by what it lists. Found good once, a lookup in `verified` thereafter.
 */
export function verifyBatch(record: SealBatch, id: string, room: string, verified?: VerifiedSeals): boolean {
  const text = batchSignedText(record, id, room)
  return text !== undefined && verifyText(batchSigner(record), text, record.sig, verified)
}

/** `verifyBatch`, remembered in `good` (`id sig`) for the rest of one validation. */
export function verifiedOnce(
  record: SealBatch,
  id: string,
  room: string,
  good: Set<string>,
  verified?: VerifiedSeals,
): boolean {
  const at = `${id} ${record.sig}`
  if (good.has(at)) return true
  const ok = verifyBatch(record, id, room, verified)
  if (ok) good.add(at)
  return ok
}

/** Whether an entry's batch seal is `entries[i]` of `record`, by the same signer, for this very entry. */
export function listedIn(
  seal: BatchSeal,
  record: SealBatch,
  map: SealedMapName,
  key: string,
  hash: string,
): boolean {
  const e = record.entries[seal.i]
  return (
    e !== undefined &&
    record.mesh === seal.mesh &&
    record.key === seal.key &&
    seal.hash === hash &&
    e[0] === map &&
    e[1] === key &&
    e[2] === hash
  )
}

/** An entry's seal, either kind. */
export type AnySeal = Seal | BatchSeal

export function isBatched(seal: AnySeal): seal is BatchSeal {
  return (seal as BatchSeal).batch !== undefined
}

/** The batch records among `writes`, by id, with the client that wrote each. */
export function batchRecordsOf(writes: RawWrite[]): Map<string, { record: SealBatch; client: number }> {
  const out = new Map<string, { record: SealBatch; client: number }>()
  for (const w of writes)
    if (w.map === 'seals' && isBatchKey(w.key) && isSealBatch(w.value))
      out.set(w.key.slice(BATCH_PREFIX.length), { record: w.value, client: w.client })
  return out
}

/** Whether any entry a record lists is among `present` (`map/key`) or held by the room's `doc`. */
export function batchInUse(record: SealBatch, present: { has(at: string): boolean }, doc: YT.Doc): boolean {
  return record.entries.some(([map, key]) => present.has(`${map}/${key}`) || doc.getMap(map).has(key))
}

/** `seals` keys of the entries a record lists. */
export function listedSealKeys(record: SealBatch): string[] {
  return record.entries.map(([map, key]) => sealKey(map as SealedMapName, key))
}

/**
 * The seal's signer must be a key of the identity it names: the identity's own key, or
 * (`seal.key`) a later key of its history. A retired key seals only entries dated
 * before its retirement (with the usual clock skew). A binding carries no date: any key
 * of the history may have sealed it (a replica learning the room later must accept the
 * bindings of old clients). A batch record is checked so with no date; each of its
 * entries with its own (its seal names the same signer).
 */
export function checkSigner(
  history: readonly MeshKey[] | undefined,
  seal: { mesh: string; key?: string },
  ts: number | undefined,
  map: string,
): void {
  const signer = seal.key ?? seal.mesh
  const key = history?.find((k) => k.did === signer)
  if (seal.key !== undefined && key === undefined)
    refuse('unknown-key', 'seal signed by a key not known to belong to its mesh', {
      map,
      mesh: seal.mesh,
      key: seal.key,
    })
  if (key?.retiredAt !== undefined && ts !== undefined && ts > key.retiredAt + ROOM_LIMITS.maxFutureSkewMs)
    refuse('retired-key', 'seal signed by a key its mesh had retired by then', {
      map,
      mesh: seal.mesh,
      key: signer,
    })
}
