import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setImmediate as tick } from 'node:timers/promises'
import * as Y from 'yjs'
import { silentLogger } from '../../src/log.ts'
import type { Link, LiveUpdate } from '../../src/rooms/link.ts'
import { Replicator, type ReplicatorComponents } from '../../src/rooms/replicator.ts'
import type { Room } from '../../src/rooms/room.ts'
import type { RoomFrame } from '../../src/rooms/sync-protocol.ts'

const ROOM = 'f'.repeat(32)
const PEER = 'did:key:z6MkPeer'

/** A replicator watching one room shared with one ready peer link; `frames` what the link sent. */
function setUp(flushGapMs: number) {
  const doc = new Y.Doc()
  const frames: RoomFrame[] = []
  let sent: () => void = () => {}
  const link = {
    peer: PEER,
    closed: false,
    ready: new Set([ROOM]),
    batch: new Map<string, LiveUpdate[]>(),
    send: (frame: RoomFrame) => {
      frames.push(frame)
      sent()
    },
  } as unknown as Link
  const replicator = new Replicator({
    rooms: {} as ReplicatorComponents['rooms'],
    shares: {
      get: () => undefined,
      peersOf: () => [{ peer: PEER }],
    } as unknown as ReplicatorComponents['shares'],
    link: () => link,
    links: () => [link],
    progress: { learnRange: () => {} } as unknown as ReplicatorComponents['progress'],
    awareness: { watch: () => {}, receive: () => {} },
    refuse: () => {},
    isOwn: () => false,
    policy: async () => ({ maxBackfillEventsPerRequest: 100 }),
    logger: silentLogger(),
    flushGapMs,
  })
  replicator.watch({ id: ROOM, doc } as unknown as Room)
  /** Resolves once the link has sent `n` frames in all. */
  const frameCount = (n: number) =>
    new Promise<void>((resolve) => {
      sent = () => {
        if (frames.length >= n) resolve()
      }
      sent()
    })
  return { doc, frames, frameCount }
}

/** The keys each frame adds, the frames applied in order to one document (as the peer does). */
function keysAdded(frames: RoomFrame[]): string[][] {
  const doc = new Y.Doc()
  const out: string[][] = []
  for (const frame of frames) {
    assert.equal(frame.type, 'update')
    const before = new Set(doc.getMap('m').keys())
    Y.applyUpdate(doc, (frame as RoomFrame & { update: Uint8Array }).update)
    out.push([...doc.getMap('m').keys()].filter((k) => !before.has(k)).sort())
  }
  return out
}

describe('replicator: live updates flushed at most every flushGapMs (issue 15, p99)', () => {
  it('sends an update at once after a quiet spell, and what follows within the gap in one frame', async () => {
    const { doc, frames, frameCount } = setUp(1_000)
    doc.getMap('m').set('a', 1)
    await frameCount(1)
    // Two more updates, a turn of the event loop apart: within the gap, they wait and go together.
    doc.getMap('m').set('b', 2)
    await tick()
    doc.getMap('m').set('c', 3)
    await frameCount(2)
    assert.deepEqual(keysAdded(frames), [['a'], ['b', 'c']])
  })

  it('with no gap, each turn of the event loop flushes its own frame (as before)', async () => {
    const { doc, frames, frameCount } = setUp(0)
    doc.getMap('m').set('a', 1)
    await frameCount(1)
    doc.getMap('m').set('b', 2)
    await frameCount(2)
    doc.getMap('m').set('c', 3)
    await frameCount(3)
    assert.deepEqual(keysAdded(frames), [['a'], ['b'], ['c']])
  })
})
