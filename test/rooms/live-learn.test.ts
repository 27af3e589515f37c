import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { silentLogger } from '../../src/log.ts'
import type { Link, LiveUpdate } from '../../src/rooms/link.ts'
import { SyncProgress, type SyncProgressComponents } from '../../src/rooms/progress.ts'
import { Replicator, type ReplicatorComponents } from '../../src/rooms/replicator.ts'
import type { Room } from '../../src/rooms/room.ts'
import type { RoomFrame } from '../../src/rooms/sync-protocol.ts'

const ROOM = 'e'.repeat(32)
const PEER = 'did:key:z6MkPeer'

/**
 * Issue 15 (alpha15): what a peer is known to hold after a live flush comes from the sent
 * transactions' clocks, not from parsing each frame; it must be what parsing would say.
 */
describe('replicator: what the peer learns of a live flush', () => {
  it('is what Y.parseUpdateMeta of each sent frame says, gaps and untouched clients included', async () => {
    const doc = new Y.Doc()
    doc.clientID = 1
    const frames: Array<RoomFrame & { update: Uint8Array }> = []
    let sent: () => void = () => {}
    const link = {
      peer: PEER,
      closed: false,
      ready: new Set([ROOM]),
      batch: new Map<string, LiveUpdate[]>(),
      send: (frame: RoomFrame & { update: Uint8Array }) => {
        frames.push(frame)
        sent()
      },
    } as unknown as Link
    const progress = () => {
      const p = new SyncProgress({} as SyncProgressComponents)
      p.of(PEER, ROOM).theirs = new Map()
      return p
    }
    const live = progress() // the replicator's, learning from the transactions
    const parsed = progress() // learning from each frame sent, parsed (as before)
    const replicator = new Replicator({
      rooms: {} as ReplicatorComponents['rooms'],
      shares: {
        get: () => undefined,
        peersOf: () => [{ peer: PEER }],
      } as unknown as ReplicatorComponents['shares'],
      link: () => link,
      links: () => [link],
      progress: live,
      awareness: { watch: () => {}, receive: () => {} },
      refuse: () => {},
      isOwn: () => false,
      policy: async () => ({ maxBackfillEventsPerRequest: 100 }),
      logger: silentLogger(),
      flushGapMs: 1_000,
    })
    replicator.watch({ id: ROOM, doc } as unknown as Room)
    const frameCount = (n: number) =>
      new Promise<void>((resolve) => {
        sent = () => {
          if (frames.length >= n) resolve()
        }
        sent()
      })
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

    for (const frame of frames) parsed.learn(PEER, ROOM, frame.update)
    assert.deepEqual(
      [...(live.of(PEER, ROOM).theirs ?? [])].sort(),
      [...(parsed.of(PEER, ROOM).theirs ?? [])].sort(),
    )
    // The gap's write came from the peer: the second frame starts past it, so clock 1 → 3 is not
    // learned from it (the peer's own frame teaches that).
    assert.deepEqual([...(live.of(PEER, ROOM).theirs ?? [])].sort(), [
      [1, 1],
      [2, 1],
    ])
  })
})
