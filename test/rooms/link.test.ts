import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { describe, it } from 'node:test'
import { streamPair } from '@libp2p/utils'
import * as Y from 'yjs'
import { RefusalThrottle } from '../../src/audit/index.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { AwarenessRelay } from '../../src/rooms/awareness-relay.ts'
import { Link } from '../../src/rooms/link.ts'
import { SyncProgress } from '../../src/rooms/progress.ts'
import { refusals } from '../../src/rooms/refusals.ts'
import { type ContentFrame, Replicator } from '../../src/rooms/replicator.ts'
import type { RoomManager } from '../../src/rooms/room-manager.ts'
import { ShareBook, type ShareRecord } from '../../src/rooms/share.ts'
import { decodeFrame, type RoomFrame } from '../../src/rooms/sync-protocol.ts'
import { alice, tempStore } from '../fixtures/principals.ts'
import { manager, meshA, meshB, until } from './helpers.ts'

/** One end of a link: a room manager on its own store, its shares, progress, replicator. */
interface Side {
  mesh: Ed25519KeyPair
  rooms: RoomManager
  shares: ShareBook
  progress: SyncProgress
  replicator: Replicator
  link: Link | undefined
  /** Every frame this end read, decoded. */
  received: RoomFrame[]
  refusals: string[]
}

async function side(
  t: TestContext,
  mesh: Ed25519KeyPair,
  maxBackfillEventsPerRequest: number,
): Promise<Side> {
  const store = await tempStore(t)
  const rooms = await manager(t, mesh, { store })
  const shares = new ShareBook(store)
  const s: Partial<Side> & { received: RoomFrame[]; refusals: string[] } = {
    mesh,
    rooms,
    shares,
    link: undefined,
    received: [],
    refusals: [],
  }
  const record = refusals({
    rooms,
    stats: { refused: 0 },
    throttle: new RefusalThrottle({ intervalMs: 1000, now: Date.now }),
  })
  const refuse: typeof record = (peer, room, code, reason, message, link) => {
    s.refusals.push(reason)
    record(peer, room, code, reason, message, link)
  }
  const link = (peer: string) => (s.link?.peer === peer && !s.link.closed ? s.link : undefined)
  const progress = new SyncProgress({
    rooms,
    shares,
    linkOpen: (peer) => link(peer) !== undefined,
    lastError: () => undefined,
    peerName: () => null,
    isFederated: () => true,
    now: Date.now,
  })
  const replicator = new Replicator({
    rooms,
    shares,
    link,
    links: () => (s.link !== undefined ? [s.link] : []),
    progress,
    awareness: new AwarenessRelay({ identity: () => mesh.did, shares, link, refuse }),
    refuse,
    isOwn: (did) => did === mesh.did,
    policy: async () => ({ maxBackfillEventsPerRequest }),
    logger: silentLogger(),
  })
  t.after(rooms.onLoad((room) => replicator.watch(room)))
  return Object.assign(s, { progress, replicator }) as Side
}

function share(room: string, peer: string, direction: 'out' | 'in', homeMesh: string): ShareRecord {
  return {
    room,
    peer,
    direction,
    homeMesh,
    name: 'general',
    topic: '',
    act: 'test',
    by: peer,
    decidedAt: 0,
    createdAt: new Date(0).toISOString(),
  }
}

/** Two link ends over an in-memory stream pair, each reading into its side's replicator. */
async function connect(t: TestContext, a: Side, b: Side): Promise<void> {
  const [sa, sb] = await streamPair()
  const shutdown = new AbortController()
  t.after(() => {
    shutdown.abort()
    a.link?.close('stopping')
    b.link?.close('stopping')
  })
  const end = (self: Side, peer: Side, stream: typeof sa, initiator: string) =>
    new Link(
      {
        events: {
          frame: async (link, bytes) => {
            const frame = decodeFrame(bytes)
            self.received.push(frame)
            if (frame.type !== 'share' && frame.type !== 'refused')
              await self.replicator.receive(link, frame as ContentFrame)
          },
          closed: () => {},
          failed: () => {},
          oversized: () => {},
        },
        signal: shutdown.signal,
        stats: { framesIn: 0, framesOut: 0 },
        logger: silentLogger(),
      },
      { peer: peer.mesh.did, key: peer.mesh.did, initiator, stream },
    )
  a.link = end(a, b, sa, a.mesh.did)
  b.link = end(b, a, sb, a.mesh.did)
  a.link.start()
  b.link.start()
}

const ofType = (frames: RoomFrame[], type: RoomFrame['type']) => frames.filter((f) => f.type === type)

describe('a link between two meshes, over an in-memory stream pair', () => {
  it('backfills a shared room in chunks of maxBackfillEventsPerRequest; both replicas end equal, live updates follow', async (t) => {
    const perChunk = 5
    const a = await side(t, meshA, perChunk)
    const b = await side(t, meshB, perChunk)
    const { id } = await a.rooms.create({ name: 'general', creator: alice.did })
    for (let i = 0; i < 23; i++) await a.rooms.post(id, alice.did, `message ${i}`)
    await b.rooms.adopt({ id, homeMesh: meshA.did, name: 'general' })
    a.shares.commit(share(id, meshB.did, 'out', meshA.did))
    b.shares.commit(share(id, meshA.did, 'in', meshA.did))
    await connect(t, a, b)

    // B asks (its SyncStep1); A answers with a backfill announcement and the chunks.
    await b.replicator.ask(b.link as Link, id)
    const incoming = () => b.progress.of(meshA.did, id).incoming
    await until(() => incoming().doneAt !== null, 'backfill received')
    const roomA = await a.rooms.load(id)
    const roomB = await b.rooms.load(id)
    await until(() => roomB.messageCount === 23, 'every message applied on B')

    const [announced] = ofType(b.received, 'backfill') as Array<Extract<RoomFrame, { type: 'backfill' }>>
    const chunks = ofType(b.received, 'step2')
    assert.ok(announced !== undefined)
    assert.ok(announced.chunks > 1, `${announced.chunks} chunks`)
    assert.equal(chunks.length, announced.chunks)
    assert.ok(announced.entries >= 23, `${announced.entries} entries`)
    assert.deepEqual(
      { chunks: incoming().chunksDone, entries: incoming().entriesDone },
      { chunks: announced.chunks, entries: announced.entries },
    )
    const outgoing = a.progress.of(meshB.did, id).outgoing
    await until(() => outgoing.doneAt !== null, 'A counts every chunk as sent')
    assert.equal(outgoing.chunksDone, announced.chunks)
    assert.deepEqual(Y.encodeStateVector(roomB.doc), Y.encodeStateVector(roomA.doc))

    // A live change now goes to B as an update frame (the link is ready for the room).
    await a.rooms.post(id, alice.did, 'live')
    await until(() => roomB.messageCount === 24, 'the live message arrives')
    assert.ok(ofType(b.received, 'update').length >= 1)
    assert.deepEqual(Y.encodeStateVector(roomB.doc), Y.encodeStateVector(roomA.doc))
    assert.deepEqual(b.refusals, [])

    // A asks too: B's answer is an empty diff, announced with 0 chunks; A is caught up.
    await a.replicator.ask(a.link as Link, id)
    await until(() => a.progress.of(meshB.did, id).incoming.doneAt !== null, 'A caught up')
    const status = await a.progress.status(id)
    assert.equal(status.peers[0]?.behind?.entries, 0)
    await until(async () => (await a.progress.status(id)).caughtUp, 'A reports B caught up')
  })

  it('refuses content of a room not shared with the peer, and relays awareness stamped with the sending mesh', async (t) => {
    const a = await side(t, meshA, 100)
    const b = await side(t, meshB, 100)
    const shared = await a.rooms.create({ name: 'shared', creator: alice.did })
    const other = await a.rooms.create({ name: 'other', creator: alice.did })
    await b.rooms.adopt({ id: shared.id, homeMesh: meshA.did, name: 'shared' })
    await b.rooms.adopt({ id: other.id, homeMesh: meshA.did, name: 'other' })
    a.shares.commit(share(shared.id, meshB.did, 'out', meshA.did))
    b.shares.commit(share(shared.id, meshA.did, 'in', meshA.did))
    await connect(t, a, b)

    // B asks for a room A never shared with it: refused, and B is told.
    await b.replicator.ask(b.link as Link, other.id)
    await until(() => ofType(b.received, 'refused').length === 1, 'B told of the refusal')
    assert.deepEqual(a.refusals, ['not-shared'])

    // Both ends greet the room (as on a link's open): A relays its clients' awareness from then on.
    await b.replicator.ask(b.link as Link, shared.id)
    await a.replicator.ask(a.link as Link, shared.id)
    const roomA = await a.rooms.load(shared.id)
    const roomB = await b.rooms.load(shared.id)
    await until(() => a.progress.of(meshB.did, shared.id).outgoing.doneAt !== null, 'B answered')
    roomA.awareness.setLocalState({ user: 'alice' })
    await until(() => roomB.awareness.getStates().has(roomA.awareness.clientID), 'awareness arrives')
    assert.deepEqual(roomB.awareness.getStates().get(roomA.awareness.clientID), {
      user: 'alice',
      mesh: meshA.did,
    })
  })
})
