import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { applyAsSent } from '../../src/rooms/peer-apply.ts'
import type { RoomOrigin } from '../../src/rooms/room.ts'
import { encodeStructs, holdsJustNew, readStructs } from '../../src/rooms/update-structs.ts'
import { tempStore } from '../fixtures/principals.ts'
import { carol, entries, manager, meshA, meshB, sharedRoom, sync } from './helpers.ts'

const PEER: RoomOrigin = { source: 'peer', meshDid: 'did:key:z6MkPeer' }

/** A room-shaped doc and a writer whose updates it receives. */
function pair(): { room: Y.Doc; writer: Y.Doc; updates: Uint8Array[] } {
  const room = new Y.Doc({ gc: false })
  room.getMap('messages')
  const writer = new Y.Doc({ gc: false })
  writer.clientID = 4242
  const updates: Uint8Array[] = []
  writer.on('update', (u: Uint8Array) => updates.push(u))
  return { room, writer, updates }
}

/** What validation hands over for `update` when the room holds what it held when the update was read. */
const asRead = (room: Y.Doc, update: Uint8Array) => holdsJustNew(readStructs(room, update))

type Heard = Array<{ update: Uint8Array; origin: unknown }>
function listen(doc: Y.Doc): Heard {
  const heard: Heard = []
  doc.on('update', (update: Uint8Array, origin: unknown) => heard.push({ update, origin }))
  return heard
}

describe('a peer update whose bytes are what it adds goes to the update listeners as received (issue 15, b6peer)', () => {
  it('gives the listeners the received bytes once, not a re-encoding, and applies them', () => {
    const { room, writer, updates } = pair()
    writer.getMap('messages').set('a', { n: 1 })
    const heard = listen(room)
    const update = updates[0] as Uint8Array
    const read = readStructs(room, update)
    assert.equal(read.replays, false)
    applyAsSent(room, update, PEER, holdsJustNew(read))
    assert.equal(heard.length, 1)
    assert.equal(heard[0]?.update, update) // the very bytes: Yjs did not encode them again
    assert.equal(heard[0]?.origin, PEER)
    assert.deepEqual(room.getMap('messages').get('a'), { n: 1 })
    // The listeners are Yjs's again afterwards: a local write is encoded and heard.
    room.getMap('messages').set('b', 2)
    assert.equal(heard.length, 2)
    assert.notEqual(heard[1]?.update, update)
  })

  it('an update holding structs the room has (a replay, an overlap) is re-encoded by Yjs: only what is new', () => {
    const { room, writer, updates } = pair()
    writer.getMap('messages').set('a', 1)
    Y.applyUpdate(room, updates[0] as Uint8Array)
    writer.getMap('messages').set('b', 2)
    const overlapping = Y.encodeStateAsUpdate(writer) // a and b: a is held already
    const read = readStructs(room, overlapping)
    assert.equal(read.replays, true)
    assert.equal(read.writes.length, 1)
    const heard = listen(room)
    applyAsSent(room, overlapping, PEER, holdsJustNew(read))
    assert.equal(heard.length, 1)
    assert.notEqual(heard[0]?.update, overlapping)
    // What the log and the links get is the new struct only (what Yjs encodes of the transaction).
    assert.deepEqual(heard[0]?.update, updates[1])
  })

  it('a transaction started while the update is applied gets Yjs’s own update, after the peer’s', () => {
    const { room, writer, updates } = pair()
    writer.getMap('messages').set('a', 1)
    const heard = listen(room)
    room.getMap('messages').observe(() => {
      if (!room.getMap('messages').has('echo')) room.getMap('messages').set('echo', true)
    })
    applyAsSent(room, updates[0] as Uint8Array, PEER, asRead(room, updates[0] as Uint8Array))
    assert.equal(heard.length, 2)
    assert.equal(heard[0]?.update, updates[0])
    const echo = new Y.Doc({ gc: false })
    Y.applyUpdate(echo, heard[1]?.update as Uint8Array)
    assert.equal(echo.getMap('messages').get('echo'), true)
  })

  it('a listener added or removed while the update is applied is added or removed', () => {
    const { room, writer, updates } = pair()
    writer.getMap('messages').set('a', 1)
    writer.getMap('messages').set('b', 2)
    const late: Heard = []
    const onLate = (update: Uint8Array, origin: unknown) => late.push({ update, origin })
    const once = (_u: Uint8Array, _o: unknown) => {
      room.off('update', once)
      room.on('update', onLate)
    }
    room.on('update', once)
    applyAsSent(room, updates[0] as Uint8Array, PEER, asRead(room, updates[0] as Uint8Array))
    applyAsSent(room, updates[1] as Uint8Array, PEER, asRead(room, updates[1] as Uint8Array))
    assert.equal(late.length, 1)
    assert.equal(late[0]?.update, updates[1])
  })

  it('inside another transaction it is applied as Yjs does (the outer transaction is encoded whole)', () => {
    const { room, writer, updates } = pair()
    writer.getMap('messages').set('a', 1)
    const heard = listen(room)
    room.transact(() => {
      room.getMap('messages').set('local', 0)
      applyAsSent(room, updates[0] as Uint8Array, PEER, asRead(room, updates[0] as Uint8Array))
    })
    assert.equal(heard.length, 1)
    const copy = new Y.Doc({ gc: false })
    Y.applyUpdate(copy, heard[0]?.update as Uint8Array)
    assert.deepEqual(copy.getMap('messages').toJSON(), { a: 1, local: 0 })
  })
})

describe('a peer update is integrated as validation read it, not decoded again (issue 15, durable15)', () => {
  /** An update of two writers' entries and a hole (a refused entry's place) of a third client. */
  function twoWritersAndAHole(room: Y.Doc): Uint8Array {
    const { writer, updates } = pair()
    writer.getMap('messages').set('a', { n: 1, text: 'ä' })
    writer.getMap('messages').set('b', [1, 'two'])
    const other = new Y.Doc({ gc: false })
    other.clientID = 7
    other.getMap('messages').set('c', { n: 3 })
    const merged = Y.mergeUpdates([...updates, Y.encodeStateAsUpdate(other)])
    const read = readStructs(room, merged)
    return encodeStructs(new Map([...read.byClient, [555, [{ client: 555, clock: 0, length: 2 }]]]))
  }

  it('the room holds the very values checked, and ends as Yjs applying the bytes leaves it', () => {
    const { room } = pair()
    const update = twoWritersAndAHole(room)
    const read = readStructs(room, update)
    const asSent = holdsJustNew(read)
    assert.ok(asSent !== undefined)
    const heard = listen(room)
    applyAsSent(room, update, PEER, asSent)
    // The values validation checked are those in the room: the bytes were not decoded again.
    for (const w of read.writes) assert.equal(room.getMap('messages').get(w.key), w.value)
    assert.equal(heard.length, 1)
    assert.equal(heard[0]?.update, update)
    const yjs = pair().room
    Y.applyUpdate(yjs, update)
    assert.deepEqual(Y.encodeStateAsUpdate(room), Y.encodeStateAsUpdate(yjs))
    assert.deepEqual(room.getMap('messages').toJSON(), yjs.getMap('messages').toJSON())
    assert.equal(room.store.pendingStructs, null)
  })

  it('two clients writing one key concurrently: the room ends as Yjs applying the bytes leaves it, whichever id is higher', () => {
    for (const [held, incoming] of [
      [9, 4242],
      [4242, 9],
    ] as const) {
      // The room already holds client `held`'s value of 'k'; the update brings `incoming`'s, written without seeing it.
      const room = new Y.Doc({ gc: false })
      room.getMap('messages')
      const yjs = new Y.Doc({ gc: false })
      yjs.getMap('messages')
      const first = new Y.Doc({ gc: false })
      first.clientID = held
      first.getMap('messages').set('k', { from: held })
      for (const d of [room, yjs]) Y.applyUpdate(d, Y.encodeStateAsUpdate(first))
      const second = new Y.Doc({ gc: false })
      second.clientID = incoming
      second.getMap('messages').set('k', { from: incoming })
      second.getMap('messages').set('other', 1)
      const update = Y.encodeStateAsUpdate(second)
      const asSent = holdsJustNew(readStructs(room, update))
      assert.ok(asSent !== undefined)
      applyAsSent(room, update, PEER, asSent)
      Y.applyUpdate(yjs, update)
      assert.deepEqual(room.getMap('messages').toJSON(), yjs.getMap('messages').toJSON())
      assert.deepEqual(Y.encodeStateAsUpdate(room), Y.encodeStateAsUpdate(yjs))
    }
  })

  it('structs the room has moved past since they were read are left to Yjs, which applies the bytes', () => {
    const { room } = pair()
    const update = twoWritersAndAHole(room)
    const asSent = holdsJustNew(readStructs(room, update))
    assert.ok(asSent !== undefined)
    Y.applyUpdate(room, update) // now every struct read is held already
    const before = Y.encodeStateAsUpdate(room)
    const heard = listen(room)
    applyAsSent(room, update, PEER, asSent)
    assert.deepEqual(Y.encodeStateAsUpdate(room), before)
    assert.equal(heard.length, 0) // nothing new: nothing logged or relayed
    assert.equal(room.store.pendingStructs, null)
  })
})

describe('a room applying peer updates as received (issue 15, b6peer)', () => {
  it('logs the received bytes when they are what they add, Yjs’s encoding when they overlap, and reloads the same room', async (t) => {
    const storeA = await tempStore(t)
    const { a, b, roomA, roomB, id } = await sharedRoom(t, { a: { store: storeA } })
    assert.equal((await sync(roomB, roomA, meshB.did)).error, undefined) // B's joins
    const sent: Uint8Array[] = []
    roomB.doc.on('update', (u: Uint8Array, origin: RoomOrigin | null) => {
      if (origin?.source === 'local') sent.push(u)
    })
    const heard = listen(roomA.doc)
    // Carol posts at B, one post a turn: one update each.
    for (let i = 0; i < 3; i++) await b.post(id, carol.did, `hello ${i}`)
    assert.equal(sent.length, 3)
    // The first, whole: heard (logged, forwarded) as received.
    assert.equal((await roomA.applyPeerUpdate(sent[0] as Uint8Array, meshB.did)).error, undefined)
    assert.equal(heard.length, 1)
    assert.equal(heard[0]?.update, sent[0])
    // A replay adds nothing: nothing heard.
    assert.equal((await roomA.applyPeerUpdate(sent[0] as Uint8Array, meshB.did)).ok?.empty, true)
    assert.equal(heard.length, 1)
    // An update overlapping what A holds (the first again, with the second): only the new part.
    const overlapping = Y.mergeUpdates([sent[0] as Uint8Array, sent[1] as Uint8Array])
    assert.equal((await roomA.applyPeerUpdate(overlapping, meshB.did)).error, undefined)
    assert.equal(heard.length, 2)
    assert.notEqual(heard[1]?.update, overlapping)
    assert.ok((heard[1]?.update.byteLength as number) < overlapping.byteLength)
    // Bytes after an update's end (Yjs ignores them): applied, but never logged or relayed as received.
    const third = sent[2] as Uint8Array
    const padded = new Uint8Array([...third, 0xde, 0xad, 0xbe, 0xef])
    assert.equal((await roomA.applyPeerUpdate(padded, meshB.did)).error, undefined)
    assert.equal(heard.length, 3)
    assert.deepEqual(heard[2]?.update, third, 'Yjs’s encoding of what it adds, without the trailing bytes')
    const before = entries(roomA)
    await a.stop()
    const again = await manager(t, meshA, { store: storeA })
    const reloaded = await again.load(id)
    assert.deepEqual(entries(reloaded), before)
    assert.equal(reloaded.messageCount, roomA.messageCount)
  })
})
