import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import type { RejectedEntry } from '../../src/connections/index.ts'
import * as rooms from '../../src/rooms/index.ts'
import { contentId, type MessageEntry, refusalOf } from '../../src/rooms/index.ts'
import { autoAcceptRooms, shareAct, startNode, type TestNode } from '../connections/nodes.ts'
import { alice, carol, connect, craft, manager, meshA, meshB, sync, until } from './helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }

async function share(from: TestNode, room: string, to: TestNode) {
  await autoAcceptRooms(to)
  return from.api.post(`/api/rooms/${room}/share`, {
    mesh: to.node.did,
    ucan: await shareAct(from, room, to.node.did),
  })
}

async function bodies(n: TestNode, room: string): Promise<string[]> {
  const page = await n.api.get<{ messages: Array<{ body: string }> }>(`/api/rooms/${room}/messages?limit=200`)
  return page.messages.map((m) => m.body)
}

/** A single-use y-websocket ticket for `room` (a session token is never put in a URL). */
async function ticket(n: TestNode, room: string): Promise<string> {
  return (await n.api.post<{ ticket: string }>(`/api/rooms/${room}/yjs-ticket`, {})).ticket
}

async function provider(t: TestContext, n: TestNode, room: string, doc: Y.Doc) {
  const url = n.node.httpUrl.replace(/^http/, 'ws')
  const p = new WebsocketProvider(`${url}/yjs`, room, doc, {
    params: { token: await ticket(n, room) },
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  })
  t.after(() => {
    p.destroy()
    doc.destroy()
  })
  return p
}

describe('Yjs client ids cannot be squatted', () => {
  it('a hostile peer binds the client id it learns from awareness: refused, and the victim’s writes land everywhere', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    const b = await startNode(t, 'beta', { rooms: ROOMS })
    const m = await startNode(t, 'mallory', { rooms: ROOMS })
    await connect(a, b)
    await connect(a, m)
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'general' })
    await share(a, id, b)
    await share(a, id, m)
    for (const n of [b, m])
      await until(
        async () =>
          (await n.api.get<{ members: unknown[] }>(`/api/rooms/${id}/members`).catch(() => ({ members: [] })))
            .members.length === 3,
        `${n.name} joined`,
      )

    // Alpha's architect opens the room in a stock y-websocket client and shows presence.
    const doc = new Y.Doc()
    const p = await provider(t, a, id, doc)
    await until(() => p.synced, 'client synced')
    p.awareness.setLocalStateField('typing', true)

    // Mallory reads the client's id from the presence alpha relays, and binds it first.
    const roomM = await m.node.rooms.load(id)
    const learned = await until(() => {
      for (const [client, state] of roomM.awareness.getStates())
        if ((state as { did?: string }).did === a.architect.did) return client
      return undefined
    }, 'alpha’s presence at mallory')
    await roomM.write([{ map: 'clients', key: String(learned), value: { mesh: m.node.did, room: id } }])
    const roomA = await a.node.rooms.load(id)
    const rejectedAtA = async () =>
      (await a.api.get<{ entries: RejectedEntry[] }>('/api/federation/rejected?limit=200')).entries
    await until(
      async () =>
        roomA.doc.getMap('clients').has(String(learned)) ||
        (await rejectedAtA()).some((e) => e.details.reason === 'client-commitment'),
      'the squat arrives at alpha',
    )

    // A socket gets its own presence back under its own id (its keep-alive), others a pseudonym.
    const raw = new WebSocket(
      `${a.node.httpUrl.replace(/^http/, 'ws')}/yjs/${id}?token=${await ticket(a, id)}`,
    )
    t.after(() => raw.close())
    const echoed: number[] = []
    raw.on('message', (data: Buffer) => {
      const d = decoding.createDecoder(new Uint8Array(data))
      if (decoding.readVarUint(d) !== 1) return
      const u = decoding.createDecoder(decoding.readVarUint8Array(d))
      for (let n = decoding.readVarUint(u); n > 0; n--) {
        echoed.push(decoding.readVarUint(u))
        decoding.readVarUint(u)
        decoding.readVarString(u)
      }
    })
    await new Promise((resolve) => raw.once('open', resolve))
    const inner = encoding.createEncoder()
    encoding.writeVarUint(inner, 1)
    encoding.writeVarUint(inner, 123_456)
    encoding.writeVarUint(inner, 1)
    encoding.writeVarString(inner, JSON.stringify({ probe: true }))
    const frame = encoding.createEncoder()
    encoding.writeVarUint(frame, 1)
    encoding.writeVarUint8Array(frame, encoding.toUint8Array(inner))
    raw.send(encoding.toUint8Array(frame))
    await until(() => echoed.includes(123_456), 'own presence echoed under its own id')
    const probe = await until(() => {
      for (const [client, state] of p.awareness.getStates())
        if ((state as { probe?: boolean }).probe === true) return client
      return undefined
    }, 'the probe at the other client')
    assert.notEqual(probe, 123_456)

    // The victim writes through its own client: the entry lands at alpha, beta and mallory.
    const entry: MessageEntry = {
      v: 1,
      room: id,
      author: a.architect.did,
      authorMesh: a.node.did,
      body: 'still mine',
      mentions: [],
      ts: Date.now(),
    }
    doc.getMap('messages').set(contentId(entry), entry)
    for (const n of [a, b, m])
      await until(async () => (await bodies(n, id)).includes('still mine'), `the write at ${n.name}`)
    assert.deepEqual(roomA.doc.getMap('clients').get(String(doc.clientID)), {
      mesh: a.node.did,
      room: id,
      did: a.architect.did,
    })
    // The squat was refused, blamed on mallory; what mallory saw was never the client's
    // id but one in the committed range, which no mesh can bind.
    const refused = (await rejectedAtA()).find((e) => e.details.reason === 'client-commitment')
    assert.equal(refused?.peer, m.node.did)
    assert.equal(roomA.doc.getMap('clients').has(String(learned)), false)
    assert.notEqual(learned, doc.clientID)
    assert.ok(learned >= rooms.COMMITTED_CLIENT_MIN)
  })
})

/** An update from a replica of `room` with client id `clientID`: bindings and messages sealed by `key`. */
function sealedBy(
  room: rooms.Room,
  key: typeof meshB,
  clientID: number,
  bindings: Array<[number, rooms.ClientBinding]>,
  messages: MessageEntry[] = [],
) {
  return craft(
    room,
    (doc) =>
      doc.transact(() => {
        for (const [client, binding] of bindings) {
          doc.getMap('clients').set(String(client), binding)
          doc
            .getMap('seals')
            .set(
              rooms.sealKey('clients', String(client)),
              rooms.makeSeal(key, room.id, 'clients', String(client), binding),
            )
        }
        for (const m of messages) {
          const id = contentId(m)
          doc.getMap('messages').set(id, m)
          doc
            .getMap('seals')
            .set(rooms.sealKey('messages', id), rooms.makeSeal(key, room.id, 'messages', id, m))
        }
      }),
    clientID,
  )
}

describe('committed client ids and replayed clocks (validateUpdate)', () => {
  it('a node writes under a committed id that verifies at its peers; no other mesh can bind one', async (t) => {
    const a = await manager(t, meshA)
    const b = await manager(t, meshB)
    const { id } = await a.create({ name: 'general', creator: alice.did })
    await b.adopt({ id, homeMesh: meshA.did })
    const roomA = await a.load(id)
    const roomB = await b.load(id)
    assert.ok((await sync(roomA, roomB, meshA.did)).ok)
    const own = roomA.doc.clientID
    assert.ok(own >= rooms.COMMITTED_CLIENT_MIN && Number.isSafeInteger(own))
    const binding = roomA.doc.getMap('clients').get(String(own)) as rooms.ClientBinding
    assert.equal(rooms.committedClientId(meshA.did, id, binding.nonce as string), own)

    // Beta binds a committed id it did not derive: one shown as a pseudonym, and one with
    // alpha's nonce (which commits alpha's mesh, not beta's).
    const pseudonym = rooms.pseudonymClientId()
    const borrowed = rooms.committedClientId(meshA.did, id, 'B'.repeat(22))
    // Each by a writer of its own: a refused claim leaves a hole in its writer's clocks.
    for (const [writer, client, claim] of [
      [4242, pseudonym, { mesh: meshB.did, room: id }],
      [4243, pseudonym, { mesh: meshB.did, room: id, nonce: 'A'.repeat(22) }],
      [4244, borrowed, { mesh: meshB.did, room: id, nonce: 'B'.repeat(22) }],
    ] as const) {
      const update = sealedBy(roomB, meshB, writer, [
        [writer, { mesh: meshB.did, room: id }],
        [client, claim],
      ])
      const result = await roomA.applyUpdate(update, { kind: 'peer', meshDid: meshB.did })
      assert.equal(refusalOf(result)?.details.reason, 'client-commitment')
    }
    // A y-websocket client may not pick an id in the committed range.
    const entry: MessageEntry = {
      v: 1,
      room: id,
      author: alice.did,
      authorMesh: meshA.did,
      body: 'hi',
      mentions: [],
      ts: Date.now(),
    }
    const write = craft(roomA, (doc) => doc.getMap('messages').set(contentId(entry), entry), pseudonym)
    const local = await roomA.applyUpdate(write, { kind: 'client', did: alice.did, mesh: meshA.did })
    assert.equal(refusalOf(local)?.details.reason, 'client-commitment')
  })

  it('a replayed clock with other content is a MESH_CONFLICT, not a silent no-op', async (t) => {
    const a = await manager(t, meshA)
    const b = await manager(t, meshB)
    const { id } = await a.create({ name: 'general', creator: alice.did })
    await b.adopt({ id, homeMesh: meshA.did })
    const roomA = await a.load(id)
    const roomB = await b.load(id)
    assert.ok((await sync(roomA, roomB, meshA.did)).ok)
    await b.join(id, carol.did)
    assert.ok((await sync(roomB, roomA, meshB.did)).ok)
    const said = (body: string): MessageEntry => ({
      v: 1,
      room: id,
      author: carol.did,
      authorMesh: meshB.did,
      body,
      mentions: [],
      ts: Date.now(),
    })
    // Both updates start from the same state, so their structs carry the same ids.
    const first = sealedBy(roomB, meshB, 4242, [[4242, { mesh: meshB.did, room: id }]], [said('one thing')])
    const other = sealedBy(roomB, meshB, 4242, [[4242, { mesh: meshB.did, room: id }]], [said('another')])
    assert.ok((await roomA.applyUpdate(first, { kind: 'peer', meshDid: meshB.did })).ok)
    const result = await roomA.applyUpdate(other, { kind: 'peer', meshDid: meshB.did })
    assert.equal(refusalOf(result)?.code, 'MESH_CONFLICT')
    assert.equal(refusalOf(result)?.details.reason, 'replay-conflict')
    // The true replay is still a no-op.
    assert.equal((await roomA.applyUpdate(first, { kind: 'peer', meshDid: meshB.did })).ok?.empty, true)
  })
})
