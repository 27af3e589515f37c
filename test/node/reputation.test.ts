import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { MeshError } from '../../src/errors.ts'
import { type InteractionSink, ReputationFeed } from '../../src/node/reputation.ts'
import type { Room } from '../../src/rooms/index.ts'

type Call = [outcome: 'accepted' | 'refused', did: string, reason: string, options?: object]

/** A sink that records every report. */
function recorder(): InteractionSink & { calls: Call[] } {
  const calls: Call[] = []
  return {
    calls,
    accepted: (did, reason, options) => void calls.push(['accepted', did, reason, options]),
    refused: (did, reason, options) => void calls.push(['refused', did, reason, options]),
  }
}

/** Rooms with real Yjs documents: some loaded now, more loaded later through `load`. */
function rooms(count: number) {
  const listeners: Array<(room: Room) => void> = []
  const room = () => ({ doc: new Y.Doc() }) as unknown as Room
  const loaded = Array.from({ length: count }, room)
  return {
    loaded: () => loaded,
    onLoad: (listener: (room: Room) => void) => listeners.push(listener),
    load: () => {
      const r = room()
      for (const listener of listeners) listener(r)
      return r
    },
  }
}

function write(room: Room, origin: unknown): void {
  room.doc.transact(() => room.doc.getMap('messages').set(String(Math.random()), 'x'), origin)
}

describe('ReputationFeed', () => {
  it('counts a peer message against the human behind its act, or else the mesh', () => {
    const sink = recorder()
    const feed = new ReputationFeed({ interactions: () => sink })
    feed.peer({ mesh: 'did:key:zMesh', principal: 'did:key:zAda', outcome: 'accepted', reason: 'connect' })
    feed.peer({ mesh: 'did:key:zMesh', outcome: 'refused', reason: 'bad-envelope' })
    assert.deepEqual(sink.calls, [
      ['accepted', 'did:key:zAda', 'connect', { mesh: 'did:key:zMesh' }],
      ['refused', 'did:key:zMesh', 'bad-envelope', { scope: 'mesh' }],
    ])
  })

  it('counts a local invocation against its principal', () => {
    const sink = recorder()
    new ReputationFeed({ interactions: () => sink }).local('did:key:zBob', 'refused', 'agent/invoke')
    assert.deepEqual(sink.calls, [['refused', 'did:key:zBob', 'agent/invoke', undefined]])
  })

  it('counts a refused room update against a peer mesh or a client with its mesh', () => {
    const sink = recorder()
    const feed = new ReputationFeed({ interactions: () => sink })
    const error = new MeshError('MESH_FORBIDDEN', 'no', { reason: 'deletes' })
    feed.roomRefused({ room: 'r', sender: { kind: 'peer', meshDid: 'did:key:zMesh' }, error })
    feed.roomRefused({
      room: 'r',
      sender: { kind: 'client', did: 'did:key:zAda', mesh: 'did:key:zHome' },
      error: new MeshError('MESH_FORBIDDEN', 'no'),
    })
    assert.deepEqual(sink.calls, [
      ['refused', 'did:key:zMesh', 'room.update deletes', { scope: 'mesh' }],
      ['refused', 'did:key:zAda', 'room.update MESH_FORBIDDEN', { mesh: 'did:key:zHome' }],
    ])
  })

  it('counts peer updates in rooms loaded before and after it watches, and nothing else', () => {
    const sink = recorder()
    const feed = new ReputationFeed({ interactions: () => sink })
    const book = rooms(1)
    feed.watchRooms(book)
    const [early] = book.loaded()
    assert.ok(early !== undefined)
    write(early, { source: 'peer', meshDid: 'did:key:zOne' })
    write(early, { source: 'client', did: 'did:key:zAda' })
    write(early, { source: 'local' })
    write(book.load(), { source: 'peer', meshDid: 'did:key:zTwo' })
    assert.deepEqual(sink.calls, [
      ['accepted', 'did:key:zOne', 'room.update', { scope: 'mesh' }],
      ['accepted', 'did:key:zTwo', 'room.update', { scope: 'mesh' }],
    ])
  })

  it('drops what happens while no reporter runs', () => {
    const feed = new ReputationFeed({ interactions: () => undefined })
    const book = rooms(1)
    feed.watchRooms(book)
    const [room] = book.loaded()
    assert.ok(room !== undefined)
    assert.doesNotThrow(() => {
      write(room, { source: 'peer', meshDid: 'did:key:zOne' })
      feed.local('did:key:zBob', 'accepted', 'agent/invoke')
    })
  })
})
