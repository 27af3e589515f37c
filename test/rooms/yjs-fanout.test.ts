import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import * as decoding from 'lib0/decoding'
import { Registry } from 'prom-client'
import { WebSocket } from 'ws'
import * as Y from 'yjs'
import { SessionService } from '../../src/auth/index.ts'
import { createHttpApp, registerSessionRoutes, roomRoutes, yjsRoutes } from '../../src/http/index.ts'
import { silentLogger } from '../../src/log.ts'
import { contentId, type MessageEntry } from '../../src/rooms/index.ts'
import { tempStore } from '../fixtures/principals.ts'
import { alice, manager, meshA, sessionToken } from './helpers.ts'

/**
 * Issue 15 (beta15): the y-websocket fan-out writes a reader's frames of one turn to its
 * TCP socket together, not one write (a syscall and a segment) per frame, and every
 * frame still reaches the reader, in order.
 */
async function server(t: TestContext) {
  const store = await tempStore(t)
  const rooms = await manager(t, meshA, { store })
  const sessions = new SessionService({ store, meshDid: meshA.did, roleOf: async () => 'architect' })
  const app = createHttpApp({ logger: silentLogger(), metrics: new Registry() })
  registerSessionRoutes(app, sessions)
  await app.register(roomRoutes, { rooms })
  await app.register(yjsRoutes, { rooms, sessions })
  // The server side of each upgraded socket, to count its writes.
  const upgraded: Socket[] = []
  app.server.on('upgrade', (_req, socket: Socket) => upgraded.push(socket))
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { rooms, port, upgraded, token: () => sessionToken(sessions, meshA.did, alice) }
}

/** Counts the writes a socket hands the kernel (each `_write` or `_writev` is one). */
function countWrites(socket: Socket): { readonly count: number } {
  const counter = { count: 0 }
  const s = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>
  for (const name of ['_write', '_writev'] as const) {
    const original = s[name].bind(socket)
    s[name] = (...args: unknown[]) => {
      counter.count++
      return original(...args)
    }
  }
  return counter
}

/** Sync messages (type 0) of kind Update (2) a socket received, decoded into `doc`. */
function updatesInto(ws: WebSocket, doc: Y.Doc): { readonly count: number } {
  const seen = { count: 0 }
  ws.on('message', (data: Buffer) => {
    const d = decoding.createDecoder(new Uint8Array(data))
    if (decoding.readVarUint(d) !== 0 || decoding.readVarUint(d) !== 2) return
    Y.applyUpdate(doc, decoding.readVarUint8Array(d))
    seen.count++
  })
  return seen
}

describe('y-websocket fan-out', () => {
  it('writes the frames of one turn to a reader in one write, all of them, in order', {
    timeout: 30_000,
  }, async (t) => {
    const { rooms, port, upgraded, token } = await server(t)
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    const room = await rooms.load(id)
    const ticket = await fetch(`http://127.0.0.1:${port}/api/rooms/${id}/yjs-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await token()}` },
    })
    const ws = new WebSocket(
      `ws://127.0.0.1:${port}/yjs/${id}?token=${((await ticket.json()) as { ticket: string }).ticket}`,
    )
    t.after(() => ws.close())
    const reader = new Y.Doc()
    const received = updatesInto(ws, reader)
    // Served: the server's SyncStep1 arrives, and the socket is idle after it.
    await new Promise((resolve) => ws.once('message', resolve))
    const socket = upgraded[0] as Socket
    const writes = countWrites(socket)

    // Five transactions (a writer's), each an update of its own, applied in one turn.
    const writer = new Y.Doc()
    const updates: Uint8Array[] = []
    writer.on('update', (u: Uint8Array) => updates.push(u))
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const entry: MessageEntry = {
        v: 1,
        room: id,
        author: alice.did,
        authorMesh: meshA.did,
        body: `burst ${i}`,
        mentions: [],
        ts: Date.now(),
      }
      ids.push(contentId(entry))
      writer.getMap('messages').set(contentId(entry), entry)
    }
    // Straight into the document, five transactions in one turn: a client's updates of one turn
    // now go in one transaction (client-turn.ts, wsturn15), a turn of peer frames still does not.
    for (const u of updates) Y.applyUpdate(room.doc, u)
    const sent = writes.count // writes made during the turn the five frames were sent in

    await new Promise<void>((resolve) => {
      const check = () => (received.count >= 5 ? resolve() : ws.once('message', () => setImmediate(check)))
      check()
    })
    assert.equal(sent, 0, 'nothing written while the turn is still sending')
    assert.equal(writes.count, 1, 'five frames, one write')
    assert.deepEqual(
      ids.map((k) => (reader.getMap('messages').get(k) as MessageEntry | undefined)?.body),
      ids.map((_, i) => `burst ${i}`),
    )
  })
})
