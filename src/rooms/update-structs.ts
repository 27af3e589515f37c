import type * as YT from 'yjs'
import { decoding, encoding, Y } from './lazy-yjs.ts' // issue 15: loaded on first use
import { ROOM_MAPS, type RoomMapName } from './room-entries.ts'
import { refuse } from './update-refusal.ts'

/**
 * Reading and writing the structs of a room update.
 *
 * Every room item is a map entry written once: no origins, no deletions. So the only
 * thing that ties one struct to the next is its client's clock: a replica that lacks
 * `(client, clock)` can apply nothing that client wrote later. When a replica refuses
 * an entry, it keeps the clock and drops the content by holding a *hole* there: a Yjs
 * GC struct of the same length, which is what Yjs itself keeps of deleted content. A
 * hole is never content, so it is never a second content under one id: a replica may
 * hold a hole where another holds the entry (see `heldEqually`). For the same reason,
 * deletions are not applied (`ReadUpdate.deletes`).
 */

/** One new map item of an update. */
export interface RawWrite {
  map: RoomMapName
  key: string
  value: unknown
  client: number
  clock: number
}

/** A clock range of one client that holds no content (a refused entry's place). */
export interface Hole {
  client: number
  clock: number
  length: number
}

/** What an update adds to a room: its new items and its new holes, in update order. */
export interface ReadUpdate {
  writes: RawWrite[]
  holes: Hole[]
  /** Per client, its new items and holes in clock order (replays left out). */
  byClient: Map<number, Array<YT.Item | Hole>>
  /**
   * Whether the update carries a delete set. Nothing in a room is ever deleted, so it
   * is never applied; but it is no refusal either: Yjs puts every GC struct of a
   * document in the delete set of each diff it encodes, so a diff from a replica that
   * holds holes "deletes" them — also where this replica holds the entry it refused.
   */
  deletes: boolean
  /** Whether the update holds structs the room has already (a replay, left out of `byClient`). */
  replays: boolean
  /** Whether bytes follow the update's end (or it was decoded elsewhere, unknown): never relayed as received. */
  trailing: boolean
}

/** `Y.decodeUpdate`'s answer: it depends on the update's bytes only, not on a room. */
export interface DecodedUpdate {
  structs: Array<YT.Item | YT.GC | YT.Skip>
  ds: { clients: Map<number, unknown> }
  /** Whether bytes follow the update's end (every Yjs reader ignores them; b6peer: never relayed as received). */
  trailing?: boolean
}

/** The byte decoder of the last update decoded (see `decodeUpdate`). */
let lastBytes: { pos: number } | undefined
let Capturing: (new (decoder: { pos: number }) => unknown) | undefined

/** `Y.decodeUpdate(update)`, and whether bytes follow its end; throws on bytes that are no Yjs update. */
export function decodeUpdate(update: Uint8Array): DecodedUpdate {
  // Yjs's own decoder class, which notes the byte decoder it reads from (where the update ends).
  Capturing ??= class extends (Y.UpdateDecoderV1 as unknown as new (d: unknown) => object) {
    constructor(decoder: { pos: number }) {
      super(decoder)
      lastBytes = decoder
    }
  }
  lastBytes = undefined
  const decoded = Y.decodeUpdateV2(update, Capturing as unknown as typeof Y.UpdateDecoderV1) as DecodedUpdate
  const bytes = lastBytes as { pos: number } | undefined
  decoded.trailing = bytes === undefined || bytes.pos !== update.byteLength
  return decoded
}

/** Each client's first clock in an update and the clock after its last struct (`Y.parseUpdateMeta`). */
export interface UpdateMeta {
  from: Map<number, number>
  to: Map<number, number>
}

/** Metas of peer updates decoded on arrival, until their progress is learnt (`takeMeta`). */
const metas = new WeakMap<Uint8Array, UpdateMeta>()

/**
 * Issue 15 (beta15): `Y.parseUpdateMeta(update)` read off its structs decoded already, kept
 * for `takeMeta`: the link's progress (progress.ts `learn`) then reads no peer update a third
 * time (≈ 1.6 % of beta's main thread in B1). Same reader, same order: the same answer.
 */
export function noteMeta(update: Uint8Array, decoded: DecodedUpdate): void {
  const from = new Map<number, number>()
  const to = new Map<number, number>()
  for (const struct of decoded.structs) {
    const { client, clock } = struct.id
    if (!from.has(client)) from.set(client, clock)
    to.set(client, clock + struct.length)
  }
  metas.set(update, { from, to })
}

/** The meta `noteMeta` kept for these very bytes, once (undefined: none kept). */
export function takeMeta(update: Uint8Array): UpdateMeta | undefined {
  const meta = metas.get(update)
  metas.delete(update)
  return meta
}

/**
 * When applying the update adds exactly its bytes (no replay, no delete set, nothing after its
 * end): its new structs as read, which peer-apply.ts integrates as they are (durable15: Yjs
 * would decode the bytes a second time). Undefined otherwise.
 */
export function holdsJustNew(read: ReadUpdate): ReadUpdate['byClient'] | undefined {
  return !read.deletes && !read.replays && !read.trailing ? read.byClient : undefined
}

/**
 * Decodes the update without applying it; structural faults are refusals. `decoded`:
 * the same bytes decoded already (seal-preverify.ts), read again as they are.
 */
export function readStructs(doc: YT.Doc, update: Uint8Array, decoded?: DecodedUpdate): ReadUpdate {
  if (decoded === undefined) {
    try {
      decoded = decodeUpdate(update)
    } catch {
      refuse('malformed', 'update is not a valid Yjs update')
    }
  }
  // Yjs applies one block of structs per client (a later block of the same client replaces
  // an earlier one): a client whose structs come in two blocks (or an empty block) would
  // apply otherwise than read. The update's first number is how many blocks it has.
  const clients = new Set(decoded.structs.map((struct) => struct.id.client))
  if (decoding.readVarUint(decoding.createDecoder(update)) !== clients.size)
    refuse('malformed', 'a client’s structs come in more than one block')
  const next = new Map<number, number>()
  const read: ReadUpdate = {
    writes: [],
    holes: [],
    byClient: new Map(),
    deletes: decoded.ds.clients.size > 0,
    replays: false,
    trailing: decoded.trailing !== false,
  }
  const add = (client: number, struct: YT.Item | Hole) => {
    let list = read.byClient.get(client)
    if (list === undefined) {
      list = []
      read.byClient.set(client, list)
    }
    list.push(struct)
  }
  for (const struct of decoded.structs) {
    const client = struct.id.client
    const known = Y.getState(doc.store, client)
    const expected = next.get(client) ?? known
    if (struct instanceof Y.Skip) refuse('incomplete', 'update has a gap', { client })
    const end = struct.id.clock + struct.length
    if (end <= known) {
      sameAsHeld(doc, struct)
      read.replays = true
      next.set(client, Math.max(expected, end))
      continue // already integrated: a replay, a no-op
    }
    if (struct.id.clock > expected)
      refuse('incomplete', 'update depends on structs this room lacks', { client })
    if (struct.id.clock < expected && expected > known)
      refuse('malformed', 'structs of one client overlap', { client })
    if (struct instanceof Y.GC) {
      // A hole may straddle what this replica holds (Yjs merges adjacent ones): the rest is new.
      const clock = Math.max(struct.id.clock, known)
      if (clock > struct.id.clock) read.replays = true
      const hole = { client, clock, length: end - clock }
      read.holes.push(hole)
      add(client, hole)
      next.set(client, end)
      continue
    }
    if (struct.id.clock < known) refuse('malformed', 'struct overlaps known state', { client })
    const item = struct as YT.Item
    if (item.origin !== null || item.rightOrigin !== null)
      refuse('overwrite', 'a map key may be written once')
    if (typeof item.parent !== 'string') refuse('foreign-type', 'only the top-level maps may be written')
    const parent: string = item.parent
    if (!(ROOM_MAPS as readonly string[]).includes(parent))
      refuse('foreign-type', 'unknown top-level type', { type: parent.slice(0, 64) })
    if (typeof item.parentSub !== 'string') refuse('foreign-type', 'the room maps are maps, not arrays')
    if (!(item.content instanceof Y.ContentAny) || item.length !== 1)
      refuse('not-json', 'entries are plain JSON values')
    next.set(client, end)
    add(client, item)
    read.writes.push({
      map: parent as RoomMapName,
      key: item.parentSub,
      value: (item.content as YT.ContentAny).arr[0],
      client,
      clock: item.id.clock,
    })
  }
  return read
}

/**
 * A struct the room already holds must be the same one: otherwise two meshes wrote
 * under one client id, and the replicas that took the other would never converge.
 */
function sameAsHeld(doc: YT.Doc, struct: YT.Item | YT.GC): void {
  if (!heldEqually(doc, struct))
    refuse('replay-conflict', 'a replayed struct differs from the one held under its id', {
      client: struct.id.client,
      clock: struct.id.clock,
    })
}

function heldEqually(doc: YT.Doc, struct: YT.Item | YT.GC): boolean {
  let held: YT.Item | YT.GC
  try {
    held = Y.getItem(doc.store, struct.id) as YT.Item | YT.GC
  } catch {
    return false
  }
  // A hole on either side: one replica refused what the other took. Not two contents.
  if (!(struct instanceof Y.Item) || !(held instanceof Y.Item)) return true
  if (held.id.clock !== struct.id.clock || held.length !== struct.length) return false
  const parent = typeof struct.parent === 'string' ? doc.share.get(struct.parent) : undefined
  if (parent === undefined || held.parent !== parent || held.parentSub !== struct.parentSub) return false
  if (!(held.content instanceof Y.ContentAny) || !(struct.content instanceof Y.ContentAny)) return false
  return JSON.stringify(held.content.arr) === JSON.stringify(struct.content.arr)
}

/**
 * Encodes items (as decoded from an update: root-map items without origins) and holes
 * as one Yjs update (v1). Each client's list must be a contiguous clock range.
 */
export function encodeStructs(byClient: Map<number, Array<YT.Item | YT.GC | Hole>>): Uint8Array {
  const encoder = new Y.UpdateEncoderV1()
  const parts = [...byClient].filter(([, list]) => list.length > 0).sort((a, b) => b[0] - a[0])
  encoding.writeVarUint(encoder.restEncoder, parts.length)
  for (const [client, list] of parts) {
    encoding.writeVarUint(encoder.restEncoder, list.length)
    encoder.writeClient(client)
    encoding.writeVarUint(encoder.restEncoder, clockOf(list[0] as YT.Item | YT.GC | Hole))
    for (const struct of list) {
      if (struct instanceof Y.Item || struct instanceof Y.GC) struct.write(encoder, 0)
      else {
        encoder.writeInfo(0) // a GC struct
        encoder.writeLen(struct.length)
      }
    }
  }
  encoding.writeVarUint(encoder.restEncoder, 0) // empty delete set
  return encoder.toUint8Array()
}

function clockOf(struct: YT.Item | YT.GC | Hole): number {
  return struct instanceof Y.Item || struct instanceof Y.GC ? struct.id.clock : struct.clock
}
