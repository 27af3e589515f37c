/**
 * Issue 15 (verify15): a peer's frames have their seals shared with a verifying thread
 * (Room.applyPeerUpdate, seal-preverify.ts) from their arrival, then are validated and
 * applied in the order given, as `applyUpdate` does. What the verifying thread found good counts
 * only for the signer and payload it verified; anything else is verified (and refused)
 * synchronously, as before.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import * as Y from 'yjs'
import type { MessageEntry, RoomOrigin, RoomRejection } from '../../src/rooms/index.ts'
import { contentId, refusalOf, sealKey, validateUpdate } from '../../src/rooms/index.ts'
import { makeSeal, type Seal, sealFact, sealPayloadText } from '../../src/rooms/room-entries.ts'
import { preverifySeals } from '../../src/rooms/seal-preverify.ts'
import { boundWrite, carol, craft, entries, meshB, type SharedRoom, sharedRoom, sync } from './helpers.ts'

const fromB = { kind: 'peer', meshDid: meshB.did } as const

/** A shared room (refusals at A recorded) and carol's `n` posts at B, each the update B's link sends. */
async function postsAtB(t: TestContext, n: number) {
  const rejections: RoomRejection[] = []
  const w = await sharedRoom(t, { a: { onRejected: (event) => rejections.push(event) } })
  await sync(w.roomB, w.roomA, meshB.did) // carol's membership, sealed by B
  const frames: Uint8Array[] = []
  w.roomB.doc.on('update', (update: Uint8Array, origin: RoomOrigin | null) => {
    if (origin?.source === 'local') frames.push(update)
  })
  // One after the other: each frame continues the clock of B's client in the one before.
  for (let i = 0; i < n; i++) await w.b.post(w.id, carol.did, `post ${i}`)
  assert.equal(frames.length, n)
  return { w, frames, rejections }
}

/** `frame` with one character of `seal`'s signature changed (it still decodes). */
function forge(frame: Uint8Array, seal: Seal): Uint8Array {
  const bytes = Buffer.from(frame)
  const at = bytes.indexOf(seal.sig)
  assert.ok(at >= 0, 'the seal is in the frame')
  bytes[at + 40] = bytes[at + 40] === 0x41 ? 0x42 : 0x41
  return new Uint8Array(bytes)
}

/** The one message `frame` writes, and its seal. */
function messageSealOf(frame: Uint8Array): { id: string; seal: Seal } {
  const written = new Map<string, unknown>()
  for (const struct of Y.decodeUpdate(frame).structs) {
    if (!(struct instanceof Y.Item) || !(struct.content instanceof Y.ContentAny)) continue
    written.set(`${String(struct.parent)}/${struct.parentSub}`, struct.content.arr[0])
  }
  const id = [...written.keys()].find((k) => k.startsWith('messages/'))?.slice('messages/'.length)
  assert.ok(id !== undefined)
  return { id, seal: written.get(`seals/${sealKey('messages', id)}`) as Seal }
}

function message(roomId: string, body: string, ts = Date.now()): MessageEntry {
  return { v: 1, room: roomId, author: carol.did, authorMesh: meshB.did, body, mentions: [], ts }
}

/**
 * An update of B's Yjs client `client` in `w`'s room: with `bind`, its binding (sealed by
 * B) first; then each message under its content id with the seal given (default: B's own).
 */
function fromClient(
  w: SharedRoom,
  client: number,
  messages: Array<{ entry: MessageEntry; seal?: Seal }>,
  bind = true,
): Uint8Array {
  return craft(
    w.roomA,
    (doc) =>
      doc.transact(() => {
        if (bind) {
          const binding = { mesh: meshB.did, room: w.id }
          const key = String(client)
          doc.getMap('clients').set(key, binding)
          doc.getMap('seals').set(sealKey('clients', key), makeSeal(meshB, w.id, 'clients', key, binding))
        }
        for (const { entry, seal } of messages) {
          const id = contentId(entry)
          doc.getMap('messages').set(id, entry)
          doc
            .getMap('seals')
            .set(sealKey('messages', id), seal ?? makeSeal(meshB, w.id, 'messages', id, entry))
        }
      }),
    client,
  )
}

describe('seals shared with a verifying thread from their frame’s arrival', () => {
  it('frames apply in the order given, each continuing the one before; the room stays loaded meanwhile', async (t) => {
    const { w, frames, rejections } = await postsAtB(t, 40)
    // All given at once, none awaited: frame k+1 can apply only after frame k (same client's clock).
    const applying = frames.map((frame) => w.roomA.applyPeerUpdate(frame, meshB.did))
    assert.equal(w.roomA.inUse, true, 'frames waiting for their turn keep the room loaded')
    const results = await Promise.all(applying)
    for (const result of results) assert.equal(refusalOf(result), undefined, refusalOf(result)?.message ?? '')
    assert.equal(rejections.length, 0)
    assert.deepEqual(entries(w.roomA), entries(w.roomB))
    assert.equal(w.roomA.doc.store.pendingStructs, null)
  })

  it('a forged seal among 40 frames is refused as applyUpdate refuses it (bad-seal, told to onRejected); the frames around it apply', async (t) => {
    // 40 one-seal frames in one turn: enough for the verifying thread to take part.
    const { w, frames, rejections } = await postsAtB(t, 40)
    const victim = messageSealOf(frames[20] as Uint8Array)
    const given = frames.map((frame, i) => (i === 20 ? forge(frame, victim.seal) : frame))
    const results = await Promise.all(given.map((frame) => w.roomA.applyPeerUpdate(frame, meshB.did)))
    results.forEach((result, i) => {
      if (i !== 20) assert.equal(refusalOf(result), undefined, `frame ${i}: ${refusalOf(result)?.message}`)
    })
    const refusal = refusalOf(results[20] as never)
    assert.equal(refusal?.code, 'MESH_UPDATE_REJECTED')
    assert.equal(refusal?.details.reason, 'bad-seal')
    assert.equal(rejections.length, 1)
    assert.equal(rejections[0]?.error.details.reason, 'bad-seal')
    assert.equal(w.roomA.message(victim.id), undefined, 'the forged entry is not applied')
    // B answers for its own client: the refused entry keeps its place as a hole, the later frames apply.
    assert.equal(w.roomA.messageCount, w.roomB.messageCount - 1)
    assert.ok(w.roomA.message(messageSealOf(frames[39] as Uint8Array).id))
    // The same bytes through the synchronous path: held as a hole already, a no-op.
    const again = await w.roomA.applyUpdate(given[20] as Uint8Array, fromB)
    assert.equal(again.error === undefined && again.ok.empty, true)
  })

  it('a signature found good on the verifying thread counts only for what it signed: replayed over other bytes, it is refused', async (t) => {
    const w = await sharedRoom(t)
    await sync(w.roomB, w.roomA, meshB.did) // carol's membership, sealed by B
    const client = 4242
    const genuine = message(w.id, 'the genuine one')
    // Enough seals for the verifying thread to take some (a turn with fewer stays the main thread's).
    const more = Array.from({ length: 40 }, (_, i) => message(w.id, `and ${i}`, genuine.ts + 1 + i))
    const frame = boundWrite(w.roomA, meshB, [genuine, ...more], client)
    const pre = preverifySeals(w.id, frame)
    await pre.settled()
    const bindingSeal = makeSeal(meshB, w.id, 'clients', String(client), { mesh: meshB.did, room: w.id })
    for (const good of [bindingSeal, makeSeal(meshB, w.id, 'messages', contentId(genuine), genuine)])
      assert.ok(pre.verified.get(good.sig), 'the binding’s seal and the message’s, both found good')
    assert.equal(refusalOf(validateUpdate(w.roomA, frame, fromB, { preverified: pre })), undefined)
    // Another body under the same client and clock, carrying the genuine seal's signature.
    const seal = makeSeal(meshB, w.id, 'messages', contentId(genuine), genuine)
    const other = message(w.id, 'not what was signed', genuine.ts)
    const otherId = contentId(other)
    const replayed = fromClient(w, client, [{ entry: other, seal: { ...seal, hash: otherId } }])
    // Even handed the verifying thread's answers for the genuine frame, the check refuses the replay.
    const check = validateUpdate(w.roomA, replayed, fromB, {
      preverified: { ...pre, update: replayed, decoded: undefined },
    })
    assert.equal(refusalOf(check)?.details.reason, 'bad-seal')
    // The same with the genuine seal as it was (its hash is not the entry's content id).
    const mismatched = fromClient(w, client, [{ entry: other, seal }], false)
    const check2 = validateUpdate(w.roomA, mismatched, fromB, {
      preverified: { ...pre, update: mismatched, decoded: undefined },
    })
    assert.ok(refusalOf(check2), 'refused')
    // And through Room.applyPeerUpdate itself: refused, nothing of it applied.
    const result = await w.roomA.applyPeerUpdate(replayed, meshB.did)
    assert.equal(refusalOf(result)?.details.reason, 'bad-seal')
    assert.equal(w.roomA.message(otherId), undefined)
  })

  it('a seal the verifying thread found good is not verified again: the synchronous check takes its answer (a planted one shows it)', async (t) => {
    const w = await sharedRoom(t)
    await sync(w.roomB, w.roomA, meshB.did) // carol's membership, sealed by B
    const client = 4343
    const entry = message(w.id, 'sealed with a bad signature')
    const id = contentId(entry)
    const bad = { ...makeSeal(meshB, w.id, 'messages', id, entry), sig: 'A'.repeat(86) }
    // Enough seals for the verifying thread to take some (a turn with fewer stays the main thread's).
    const more = Array.from({ length: 40 }, (_, i) => ({
      entry: message(w.id, `and ${i}`, entry.ts + 1 + i),
    }))
    const frame = fromClient(w, client, [{ entry, seal: bad }, ...more])
    // The thread refuses the bad signature: the synchronous check verifies it again, and refuses it.
    const pre = preverifySeals(w.id, frame)
    await pre.settled()
    const binding = { mesh: meshB.did, room: w.id }
    assert.ok(pre.verified.get(makeSeal(meshB, w.id, 'clients', String(client), binding).sig))
    assert.equal(pre.verified.get(bad.sig), undefined, 'the bad one is not found good')
    assert.equal(
      refusalOf(validateUpdate(w.roomA, frame, fromB, { preverified: pre }))?.details.reason,
      'bad-seal',
    )
    // A planted answer for exactly this signer and payload is taken as is: nothing is verified twice.
    pre.verified.set(bad.sig, sealFact(meshB.did, sealPayloadText(w.id, 'messages', id, id)))
    assert.equal(refusalOf(validateUpdate(w.roomA, frame, fromB, { preverified: pre })), undefined)
    // … and only for these bytes: the same answers handed with a copy of them are not used.
    const copy = new Uint8Array(frame)
    assert.equal(
      refusalOf(validateUpdate(w.roomA, copy, fromB, { preverified: pre }))?.details.reason,
      'bad-seal',
    )
  })

  it('batch records are shared too: found good by the thread, taken as is; a forged one is refused (b6peer)', async (t) => {
    const w = await sharedRoom(t)
    await sync(w.roomB, w.roomA, meshB.did) // carol's membership, sealed by B
    const frames: Uint8Array[] = []
    w.roomB.doc.on('update', (update: Uint8Array, origin: RoomOrigin | null) => {
      if (origin?.source === 'local') frames.push(update)
    })
    // Two posts a turn: one frame under one batch record; 40 of them, enough for the thread.
    for (let i = 0; i < 40; i++)
      await Promise.all([w.b.post(w.id, carol.did, `a ${i}`), w.b.post(w.id, carol.did, `b ${i}`)])
    const recordOf = (frame: Uint8Array) => {
      for (const struct of Y.decodeUpdate(frame).structs)
        if (struct instanceof Y.Item && String(struct.parentSub).startsWith('batch/'))
          return (struct.content as Y.ContentAny).arr[0] as Seal
      assert.fail('the frame has a batch record')
    }
    const pres = frames.map((frame) => preverifySeals(w.id, frame))
    for (const pre of pres) await pre.settled()
    frames.forEach((frame, i) => {
      assert.ok(pres[i]?.verified.get(recordOf(frame).sig), `record ${i} found good by the thread`)
      assert.equal(refusalOf(validateUpdate(w.roomA, frame, fromB, { preverified: pres[i] })), undefined)
      Y.applyUpdate(w.roomA.doc, frame)
    })
    // A forged record: the thread does not find it good, the synchronous check refuses it.
    const more = await Promise.all([w.b.post(w.id, carol.did, 'c'), w.b.post(w.id, carol.did, 'd')])
    assert.equal(more.length, 2)
    const next = frames.at(-1) as Uint8Array
    const bad = forge(next, recordOf(next))
    const pre = preverifySeals(w.id, bad)
    await pre.settled()
    assert.equal(pre.verified.get(recordOf(bad).sig), undefined)
    assert.equal(
      refusalOf(validateUpdate(w.roomA, bad, fromB, { preverified: pre }))?.details.reason,
      'bad-seal',
    )
  })
})
