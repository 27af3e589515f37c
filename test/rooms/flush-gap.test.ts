import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setImmediate as tick } from 'node:timers/promises'
import * as Y from 'yjs'
import { silentLogger } from '../../src/log.ts'
import type { Link, LiveUpdate } from '../../src/rooms/link.ts'
import { SyncProgress, type SyncProgressComponents } from '../../src/rooms/progress.ts'
import { Replicator, type ReplicatorComponents } from '../../src/rooms/replicator.ts'
import type { Room } from '../../src/rooms/room.ts'
import type { RoomFrame } from '../../src/rooms/sync-protocol.ts'

const ROOM = 'f'.repeat(32)
const PEER = 'did:key:z6MkPeer'

/** A replicator watching one room shared with one ready peer link; `frames` what the link sent. */
function setUp(flushGapMs: number, progress?: SyncProgress) {
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
    progress: progress ?? ({ learnRange: () => {} } as unknown as ReplicatorComponents['progress']),
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

/**
 * Issue 15 (alpha15): what a peer is known to hold after a live flush comes from the sent
 * transactions' clocks, not from parsing each frame; it must be what parsing would say.
 */
describe('replicator: what the peer learns of a live flush', () => {
  it('is what Y.parseUpdateMeta of each sent frame says, gaps and untouched clients included', async () => {
    const progress = () => {
      const p = new SyncProgress({} as SyncProgressComponents)
      p.of(PEER, ROOM).theirs = new Map()
      return p
    }
    const live = progress() // the replicator's, learning from the transactions
    const parsed = progress() // learning from each frame sent, parsed (as before)
    const { doc, frames, frameCount } = setUp(1_000, live)
    doc.clientID = 1
    // Another client's writes (client 2), as a y-websocket client's would arrive.
    const other = new Y.Doc()
    other.clientID = 2
    const write = (key: string, origin: unknown) => {
      const before = Y.encodeStateVector(other)
      other.getMap('m').set(key, key)
      Y.applyUpdate(doc, Y.encodeStateAsUpdate(other, before), origin)
    }
    const client = { source: 'client', did: 'did:key:z6MkWriter' }

    write('a', client) // client 2: 0 → 1, sent at once, alone
    await frameCount(1)
    // Within the gap: our own write (client 2 untouched at 1), then client 2's next write
    // comes from the peer itself (not sent back: a gap), then client 2 writes again.
    doc.getMap('m').set('b', 'b')
    write('c', { source: 'peer', meshDid: PEER })
    write('d', client)
    await frameCount(2)

    for (const frame of frames) parsed.learn(PEER, ROOM, (frame as RoomFrame & { update: Uint8Array }).update)
    const theirs = (p: SyncProgress) => [...(p.of(PEER, ROOM).theirs ?? [])].sort()
    assert.deepEqual(theirs(live), theirs(parsed))
    // The second frame starts past the peer's own write: client 2's clock 1 → 3 is not learned
    // from it (the peer's frame teaches that).
    assert.deepEqual(theirs(live), [
      [1, 1],
      [2, 1],
    ])
  })
})
