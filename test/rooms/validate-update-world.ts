/** The two-mesh world and the crafted updates the validateUpdate tests share. */
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import * as Y from 'yjs'
import {
  contentId,
  type MessageEntry,
  makeSeal,
  type Room,
  type RoomManager,
  refusalOf,
  sealKey,
  type UpdateSender,
} from '../../src/rooms/index.ts'
import { alice, carol, content, craft, meshA, meshB, sharedRoom, sync } from './helpers.ts'

export interface World {
  a: RoomManager
  b: RoomManager
  roomA: Room
  roomB: Room
  id: string
  rejections: Array<{ room: string; reason: unknown }>
}

/** Mesh A homes a room; mesh B (carol, and mallory gone rogue) participates; both replicas in sync. */
export async function world(t: TestContext): Promise<World> {
  const rejections: World['rejections'] = []
  const w = await sharedRoom(t, {
    a: { onRejected: (r) => rejections.push({ room: r.room, reason: r.error.details.reason }) },
    before: (a, id) => a.post(id, alice.did, 'first, by alice'),
  })
  await w.b.post(w.id, carol.did, 'hello from beta')
  assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
  await bindSpare(w.roomA, w.roomB)
  return { ...w, rejections }
}

/**
 * A second writer of beta's, apart from beta's node: the attacks write under it, so
 * that a refused entry's hole is never where beta's honest node writes next.
 */
export async function bindSpare(roomA: Room, roomB: Room): Promise<void> {
  const binding = { mesh: meshB.did, room: roomA.id }
  const key = String(SPARE_B)
  const spare = craft(
    roomA,
    (doc) =>
      doc.transact(() => {
        doc.getMap('clients').set(key, binding)
        doc.getMap('seals').set(sealKey('clients', key), makeSeal(meshB, roomA.id, 'clients', key, binding))
      }),
    SPARE_B,
  )
  assert.ok((await roomA.applyUpdate(spare, { kind: 'peer', meshDid: meshB.did })).ok)
  assert.ok((await sync(roomA, roomB, meshA.did)).ok)
  assert.deepEqual(content(roomA), content(roomB))
}

/** Every entry of `sub` is in `sup`, with the same value. */
export function within(sub: Record<string, unknown>, sup: Record<string, unknown>): boolean {
  for (const [map, entries] of Object.entries(sub)) {
    const of = (sup[map] ?? {}) as Record<string, unknown>
    for (const [key, value] of Object.entries(entries as Record<string, unknown>))
      if (JSON.stringify(of[key]) !== JSON.stringify(value)) return false
  }
  return true
}

/**
 * `after` less the client bindings of `did` (and their seals) that `before` lacks: a
 * client whose write is refused still has its id bound, to it, by the hole it leaves.
 */
export function lessBindingsOf(
  after: Record<string, unknown>,
  did: string,
  before: Record<string, unknown>,
): Record<string, unknown> {
  const clients = { ...(after.clients as Record<string, { did?: string }>) }
  const seals = { ...(after.seals as Record<string, unknown>) }
  const had = before.clients as Record<string, unknown>
  for (const [id, binding] of Object.entries(clients)) {
    if (binding.did !== did || id in had) continue
    delete clients[id]
    delete seals[`clients/${id}`]
  }
  return { ...after, clients, seals }
}

/** Beta's second writer (see `world`). */
export const SPARE_B = 555_555

export const fromB: UpdateSender = { kind: 'peer', meshDid: meshB.did }

export function aliceMessage(room: Room): string {
  for (const [id, v] of room.doc.getMap('messages')) if ((v as MessageEntry).author === alice.did) return id
  throw new Error('no message by alice')
}

/**
 * Whatever `sv` lacks of `doc` is holes only (GC structs): a refused entry's place, no
 * content (update-structs.ts).
 */
export function onlyHolesSince(doc: Y.Doc, sv: Uint8Array): boolean {
  const { structs } = Y.decodeUpdate(Y.encodeStateAsUpdate(doc, sv)) as { structs: unknown[] }
  return structs.every((s) => s instanceof Y.GC)
}

/**
 * The attack is refused with `reason` (whole, or the part that carries it), leaves A's
 * content as it was — at most a hole where a refused entry of the sender's own client
 * was — and an honest sentinel still gets through.
 */
export async function refusedAndHealthy(
  w: World,
  update: Uint8Array,
  sender: UpdateSender,
  reason: string | string[],
) {
  const before = content(w.roomA)
  const sv = Y.encodeStateVector(w.roomA.doc)
  const result = await w.roomA.applyUpdate(update, sender)
  const refusal = refusalOf(result)
  assert.ok(refusal, `expected a refusal (${reason})`)
  assert.ok(
    [reason].flat().includes(refusal.details.reason as string),
    `${refusal.details.reason}: ${refusal.message}`,
  )
  assert.deepEqual(content(w.roomA), before)
  assert.ok(onlyHolesSince(w.roomA.doc, sv), 'nothing but holes added')
  assert.equal(w.roomA.doc.store.pendingStructs, null)
  const sentinel = await w.b.post(w.id, carol.did, `sentinel ${Math.random()}`)
  const synced = await sync(w.roomB, w.roomA, meshB.did)
  assert.ok(synced.ok, synced.error?.message ?? '')
  assert.ok(w.roomA.message(sentinel.id), 'the sentinel arrives after the attack')
  assert.deepEqual(content(w.roomA), content(w.roomB), 'honest replicas identical')
}

/** A message sealed by mesh `key`, as written through a replica with the given client id. */
export function sealedWrite(room: Room, key: typeof meshB, entry: MessageEntry, clientID?: number) {
  const id = contentId(entry)
  return craft(
    room,
    (doc) => {
      doc.transact(() => {
        doc.getMap('messages').set(id, entry)
        doc.getMap('seals').set(sealKey('messages', id), makeSeal(key, room.id, 'messages', id, entry))
      })
    },
    clientID,
  )
}

export function boundClient(room: Room, mesh: string): number {
  for (const [k, v] of room.doc.getMap('clients')) if ((v as { mesh: string }).mesh === mesh) return Number(k)
  throw new Error('no bound client')
}

export function message(w: World, author: string, authorMesh: string, body: string): MessageEntry {
  return { v: 1, room: w.id, author, authorMesh, body, mentions: [], ts: Date.now() }
}
