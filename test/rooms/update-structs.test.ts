import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { Refusal } from '../../src/rooms/update-refusal.ts'
import { decodeUpdate, noteMeta, readStructs, takeMeta } from '../../src/rooms/update-structs.ts'

const CLIENT = 4242

/** A room-shaped doc (the maps typed) and `n` entries written by CLIENT, one update. */
function written(n: number): { room: Y.Doc; update: Uint8Array } {
  const room = new Y.Doc({ gc: false })
  room.getMap('messages')
  const writer = new Y.Doc({ gc: false })
  writer.clientID = CLIENT
  for (let i = 0; i < n; i++) writer.getMap('messages').set(`k${i}`, { i })
  return { room, update: Y.encodeStateAsUpdate(writer) }
}

/** The update's structs re-encoded in the given blocks (each its struct indexes, as digits), one client. */
function blocks(update: Uint8Array, digits: string[]): Uint8Array {
  const structs = Y.decodeUpdate(update).structs as Y.Item[]
  const parts = digits.map((d) => [...d].map(Number))
  const encoder = new Y.UpdateEncoderV1()
  encoding.writeVarUint(encoder.restEncoder, parts.length)
  for (const part of parts) {
    encoding.writeVarUint(encoder.restEncoder, part.length)
    encoder.writeClient(CLIENT)
    encoding.writeVarUint(encoder.restEncoder, (structs[part[0] as number] as Y.Item).id.clock)
    for (const i of part) (structs[i] as Y.Item).write(encoder, 0)
  }
  encoding.writeVarUint(encoder.restEncoder, 0)
  return encoder.toUint8Array()
}

function refusedAs(room: Y.Doc, update: Uint8Array, reason: string): void {
  assert.throws(
    () => readStructs(room, update),
    (err: unknown) => err instanceof Refusal && err.reason === reason,
  )
}

describe('readStructs: an update applies whole, or is refused (no trial apply on a copy)', () => {
  it('reads one block per client, as Yjs writes it', () => {
    const { room, update } = written(4)
    assert.equal(readStructs(room, blocks(update, ['0123'])).writes.length, 4)
  })

  it('refuses a client’s structs in two blocks, next to each other or not (Yjs would keep the last)', () => {
    const { room, update } = written(4)
    for (const parts of [
      ['01', '23'],
      ['23', '01'],
    ])
      refusedAs(room, blocks(update, parts), 'malformed')
    // What Yjs makes of it: the first block dropped, the rest pending — never a room's state.
    const doc = new Y.Doc({ gc: false })
    Y.applyUpdate(doc, blocks(update, ['01', '23']))
    assert.notEqual(doc.store.pendingStructs, null)
  })

  it('refuses structs of one client that overlap, and a gap', () => {
    const { room, update } = written(4)
    // Within a block clocks follow from its start: an overlap takes a second block.
    refusedAs(room, blocks(update, ['01', '12']), 'malformed')
    refusedAs(room, blocks(update, ['123']), 'incomplete')
  })
})

describe('update metas kept from arrival (beta15)', () => {
  it('are Y.parseUpdateMeta of the same bytes, given once', () => {
    // Two clients, the second's clocks not from 0 (an update after others), and a skip between.
    const a = new Y.Doc({ gc: false })
    a.clientID = 7
    a.getMap('messages').set('x', 1)
    const b = new Y.Doc({ gc: false })
    b.clientID = 9
    b.getMap('messages').set('y', 1)
    const seen = Y.encodeStateVector(b)
    b.getMap('messages').set('z', 2)
    b.getMap('messages').set('w', 3)
    const update = Y.mergeUpdates([
      Y.encodeStateAsUpdate(a),
      Y.encodeStateAsUpdate(b, seen),
      Y.encodeStateAsUpdate(written(3).room),
    ])
    assert.equal(takeMeta(update), undefined, 'nothing kept before it is noted')
    noteMeta(update, decodeUpdate(update))
    assert.deepEqual(takeMeta(update), Y.parseUpdateMeta(update))
    assert.equal(takeMeta(update), undefined, 'given once')
    const { update: one } = written(4)
    noteMeta(one, decodeUpdate(one))
    assert.deepEqual(takeMeta(one), Y.parseUpdateMeta(one))
  })
})
