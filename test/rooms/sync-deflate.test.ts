import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { deflateRawSync } from 'node:zlib'
import * as encoding from 'lib0/encoding'
import { ROOM_LIMITS } from '../../src/rooms/room-entries.ts'
import {
  decodeFrame,
  encodeFrame,
  MalformedFrameError,
  MESH_ROOMS_PROTOCOL_DEFLATE,
  SYNC_STEP,
} from '../../src/rooms/sync-protocol.ts'
import { autoAcceptRooms, shareAct, startNode } from '../connections/nodes.ts'
import { connect, until } from './helpers.ts'

const ROOM = 'a'.repeat(32)

describe('/mesh/rooms/1.1.0: catch-up chunks deflated', () => {
  it('a deflated SyncStep2 decodes to the same chunk, smaller on the wire', () => {
    const update = new TextEncoder().encode(
      JSON.stringify(Array.from({ length: 500 }, (_, i) => ({ i, room: ROOM }))),
    )
    const plain = encodeFrame({ room: ROOM, type: 'step2', update })
    const deflated = encodeFrame({ room: ROOM, type: 'step2', update, deflate: true })
    assert.ok(deflated.byteLength < plain.byteLength / 4)
    assert.deepEqual(decodeFrame(deflated), { room: ROOM, type: 'step2', update })
    assert.deepEqual(decodeFrame(plain), { room: ROOM, type: 'step2', update })
    // Only catch-up chunks are deflated: a live update goes as it is.
    assert.deepEqual(
      encodeFrame({ room: ROOM, type: 'update', update, deflate: true }),
      encodeFrame({ room: ROOM, type: 'update', update }),
    )
  })

  it('refuses a deflate bomb and a payload that is not deflate', () => {
    const frame = (payload: Uint8Array) => {
      const e = encoding.createEncoder()
      encoding.writeVarString(e, ROOM)
      encoding.writeVarUint(e, 0)
      encoding.writeVarUint(e, SYNC_STEP.step2Deflated)
      encoding.writeVarUint8Array(e, payload)
      return encoding.toUint8Array(e)
    }
    const bomb = deflateRawSync(new Uint8Array(ROOM_LIMITS.maxUpdateBytes + 1))
    assert.ok(bomb.byteLength < 1024)
    assert.throws(() => decodeFrame(frame(bomb)), MalformedFrameError)
    assert.throws(() => decodeFrame(frame(Uint8Array.of(1, 2, 3, 4, 5))), MalformedFrameError)
  })
})

describe('/mesh/rooms/1.1.0 between two nodes', () => {
  it('a peer catches up on missed messages through deflated chunks, on a 1.1.0 link', async (t) => {
    const rooms = { syncIntervalMs: 200, dialTimeoutMs: 3000 }
    const a = await startNode(t, 'alpha', { rooms })
    const b = await startNode(t, 'beta', { rooms })
    await connect(a, b)
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'general' })
    for (let i = 0; i < 40; i++) await a.api.post(`/api/rooms/${id}/messages`, { body: `missed ${i}` })
    await autoAcceptRooms(b)
    await a.api.post(`/api/rooms/${id}/share`, { mesh: b.node.did, ucan: await shareAct(a, id, b.node.did) })
    type Msg = { body: string }
    await until(async () => {
      const page = await b.api
        .get<{ messages: Msg[] }>(`/api/rooms/${id}/messages?limit=200`)
        .catch(() => undefined)
      return page?.messages.filter((m) => m.body.startsWith('missed')).length === 40 ? true : undefined
    }, 'the missed messages at beta')
    const protocols = a.node.libp2p
      .getConnections()
      .flatMap((c) => c.streams.map((s) => s.protocol))
      .filter((p) => p?.startsWith('/mesh/rooms/'))
    assert.deepEqual([...new Set(protocols)], [MESH_ROOMS_PROTOCOL_DEFLATE])
  })
})
