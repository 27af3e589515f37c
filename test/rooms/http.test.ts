import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import * as encoding from 'lib0/encoding'
import { Registry } from 'prom-client'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { type SessionRole, SessionService } from '../../src/auth/index.ts'
import { createHttpApp, registerSessionRoutes, roomRoutes, yjsRoutes } from '../../src/http/index.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { contentId, type MessageEntry, sealKey, type YjsTicketsInit } from '../../src/rooms/index.ts'
import { tempStore } from '../fixtures/principals.ts'
import { alice, bob, makeBobReadOnly, mallory, manager, meshA, sessionToken } from './helpers.ts'

const ROLES: Record<string, SessionRole> = {
  [alice.did]: 'architect',
  [bob.did]: 'human',
  [mallory.did]: 'human',
}

async function server(t: TestContext, tickets?: YjsTicketsInit) {
  const store = await tempStore(t)
  const rooms = await manager(t, meshA, { store })
  const sessions = new SessionService({ store, meshDid: meshA.did, roleOf: async (did) => ROLES[did] })
  const app = createHttpApp({ logger: silentLogger(), metrics: new Registry() })
  registerSessionRoutes(app, sessions)
  await app.register(roomRoutes, { rooms })
  await app.register(yjsRoutes, { rooms, sessions, ...(tickets !== undefined ? { tickets } : {}) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const token = (key: Ed25519KeyPair) => sessionToken(sessions, meshA.did, key)
  return { app, rooms, port, token }
}

function auth(token: string) {
  return { authorization: `Bearer ${token}` }
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000) {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** A y-websocket ticket for `room` from session `token`; undefined when the node refuses one. */
async function ticketFor(port: number, room: string, token: string): Promise<string | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/api/rooms/${room}/yjs-ticket`, {
    method: 'POST',
    headers: auth(token),
  })
  return res.ok ? ((await res.json()) as { ticket: string }).ticket : undefined
}

/**
 * A stock WebsocketProvider signed in as session `token`: it connects with a ticket
 * fetched for it (a token that gets none goes as it is, to be refused).
 */
function provider(t: TestContext, port: number, room: string, token: string, doc = new Y.Doc()) {
  const p = new WebsocketProvider(`ws://127.0.0.1:${port}/yjs`, room, doc, {
    connect: false,
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  })
  let destroyed = false
  void ticketFor(port, room, token).then((ticket) => {
    if (destroyed) return
    p.params = { token: ticket ?? token }
    p.connect()
  })
  t.after(() => {
    destroyed = true
    p.destroy()
    doc.destroy() // also stops the provider's awareness timer
  })
  return p
}

/** A raw socket on `room` with `token` in the URL: its first message, its close code, whichever comes first. */
function rawSocket(t: TestContext, port: number, room: string, token: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/yjs/${room}?token=${token}`)
  t.after(() => ws.close())
  const firstMessage = new Promise<void>((resolve) => ws.once('message', () => resolve()))
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  const outcome = Promise.race([closed, firstMessage.then(() => 'served' as const)])
  return { ws, firstMessage, closed, outcome }
}

function closeCode(p: WebsocketProvider): Promise<number> {
  return new Promise((resolve) =>
    p.on('connection-close', (event) => {
      if (event !== null) resolve(event.code)
    }),
  )
}

describe('room routes', () => {
  it('create, list, post, page, react, redact, members and notifications over HTTP', async (t) => {
    const { app, token } = await server(t)
    const ta = await token(alice)
    const tb = await token(bob)
    const unauth = await app.inject({ method: 'POST', url: '/api/rooms', payload: { name: 'x' } })
    assert.equal(unauth.statusCode, 401)
    assert.equal(unauth.json().error.code, 'MESH_UNAUTHENTICATED')
    const extra = await app.inject({
      method: 'POST',
      url: '/api/rooms',
      headers: auth(ta),
      payload: { name: 'x', admin: true },
    })
    assert.equal(extra.statusCode, 400)
    assert.equal(extra.json().error.code, 'MESH_BAD_REQUEST')
    const created = await app.inject({
      method: 'POST',
      url: '/api/rooms',
      headers: auth(ta),
      payload: { name: 'general', topic: 'hi' },
    })
    assert.equal(created.statusCode, 201)
    const room = created.json() as { id: string; homeMesh: string }
    assert.equal(room.homeMesh, meshA.did)
    const list = await app.inject({ method: 'GET', url: '/api/rooms', headers: auth(tb) })
    assert.deepEqual(
      list.json().rooms.map((r: { id: string }) => r.id),
      [room.id],
    )
    const notMember = await app.inject({
      method: 'POST',
      url: `/api/rooms/${room.id}/messages`,
      headers: auth(tb),
      payload: { body: 'hi' },
    })
    assert.equal(notMember.statusCode, 403)
    assert.equal(
      (await app.inject({ method: 'POST', url: `/api/rooms/${room.id}/join`, headers: auth(tb) })).statusCode,
      200,
    )
    const posted = await app.inject({
      method: 'POST',
      url: `/api/rooms/${room.id}/messages`,
      headers: auth(tb),
      payload: { body: 'hello @alice' },
    })
    assert.equal(posted.statusCode, 201)
    const { id: mid } = posted.json() as { id: string }
    for (let i = 0; i < 4; i++)
      await app.inject({
        method: 'POST',
        url: `/api/rooms/${room.id}/messages`,
        headers: auth(ta),
        payload: { body: `n${i}` },
      })
    const page1 = (
      await app.inject({ method: 'GET', url: `/api/rooms/${room.id}/messages?limit=3`, headers: auth(ta) })
    ).json()
    assert.equal(page1.messages.length, 3)
    assert.deepEqual(Object.keys(page1.messages[0]).sort(), [
      'author',
      'authorDid',
      'body',
      'id',
      'mentions',
      'mesh',
      'reactions',
      'ts',
    ])
    assert.equal(page1.messages[0].author, '@bob')
    assert.deepEqual(page1.messages[0].mentions, [alice.did])
    const page2 = (
      await app.inject({
        method: 'GET',
        url: `/api/rooms/${room.id}/messages?limit=3&after=${page1.nextCursor}`,
        headers: auth(ta),
      })
    ).json()
    assert.equal(page2.messages.length, 2)
    assert.equal(page2.nextCursor, null)
    const bad = await app.inject({
      method: 'GET',
      url: `/api/rooms/${room.id}/messages?limit=abc`,
      headers: auth(ta),
    })
    assert.equal(bad.statusCode, 400)
    const react = await app.inject({
      method: 'POST',
      url: `/api/rooms/${room.id}/messages/${mid}/reactions`,
      headers: auth(ta),
      payload: { emoji: '👍' },
    })
    assert.equal(react.statusCode, 201)
    const forbidden = await app.inject({
      method: 'POST',
      url: `/api/rooms/${room.id}/messages/${page1.messages[1].id}/redact`,
      headers: auth(tb),
    })
    assert.equal(forbidden.statusCode, 403)
    const redact = await app.inject({
      method: 'POST',
      url: `/api/rooms/${room.id}/messages/${mid}/redact`,
      headers: auth(tb),
      payload: { reason: 'oops' },
    })
    assert.equal(redact.statusCode, 201)
    const after = (
      await app.inject({ method: 'GET', url: `/api/rooms/${room.id}/messages`, headers: auth(ta) })
    ).json()
    assert.equal(after.messages[0].redacted, true)
    assert.deepEqual(after.messages[0].reactions, { '👍': 1 })
    const members = (
      await app.inject({ method: 'GET', url: `/api/rooms/${room.id}/members`, headers: auth(ta) })
    ).json()
    assert.deepEqual(members.members.map((m: { name: string }) => m.name).sort(), ['@alice', '@bob'])
    const notes = (
      await app.inject({ method: 'GET', url: '/api/me/notifications', headers: auth(ta) })
    ).json()
    assert.equal(notes.notifications.length, 1)
    assert.equal(notes.notifications[0].author, '@bob')
    const missing = await app.inject({ method: 'GET', url: '/api/rooms/nosuchroomatall', headers: auth(ta) })
    assert.equal(missing.statusCode, 404)
    assert.equal(missing.json().error.code, 'MESH_NOT_FOUND')
  })
})

describe('y-websocket endpoint', () => {
  async function setup(t: TestContext) {
    const s = await server(t)
    const { id } = await s.rooms.create({ name: 'general', creator: alice.did })
    await s.rooms.join(id, bob.did)
    const first = await s.rooms.post(id, alice.did, 'already here')
    await s.rooms.post(id, bob.did, 'me too')
    return { ...s, id, first: first.id }
  }

  it('syncs a stock WebsocketProvider: reads, writes a valid entry, drops a refused one', async (t) => {
    const { app, rooms, port, token, id, first } = await setup(t)
    const ta = await token(alice)
    const doc = new Y.Doc()
    const p = provider(t, port, id, ta, doc)
    await until(() => p.synced, 'sync')
    const messages = doc.getMap<MessageEntry>('messages')
    assert.equal(messages.size, 2)
    assert.equal(messages.get(first)?.body, 'already here')

    const entry: MessageEntry = {
      v: 1,
      room: id,
      author: alice.did,
      authorMesh: meshA.did,
      body: 'from a Yjs client',
      mentions: [],
      ts: Date.now(),
    }
    const mid = contentId(entry)
    messages.set(mid, entry)
    await until(async () => {
      const page = (
        await app.inject({ method: 'GET', url: `/api/rooms/${id}/messages`, headers: auth(ta) })
      ).json()
      return page.messages.some((m: { id: string }) => m.id === mid)
    }, 'the client message over HTTP')
    await until(() => doc.getMap('seals').has(sealKey('messages', mid)), 'the node’s seal back at the client')
    assert.deepEqual(doc.getMap('clients').get(String(doc.clientID)), {
      mesh: meshA.did,
      room: id,
      did: alice.did,
    })

    // Editing alice's own earlier message: refused, dropped, logged.
    const room = await rooms.load(id)
    const rejectedBefore = rooms.stats.rejected
    messages.set(first, { ...(messages.get(first) as MessageEntry), body: 'rewritten history' })
    await until(() => rooms.stats.rejected > rejectedBefore, 'the refusal')
    assert.equal(room.message(first)?.body, 'already here')
    // Sentinel: the room and the socket stay healthy.
    const sentinel = await rooms.post(id, bob.did, 'sentinel after the refused write')
    await until(() => messages.has(sentinel.id), 'the sentinel at the client')
  })

  it('drops a message a stock WebsocketProvider dates decades back', async (t) => {
    const { rooms, port, token, id } = await setup(t)
    const doc = new Y.Doc()
    const p = provider(t, port, id, await token(bob), doc)
    await until(() => p.synced, 'sync')
    const room = await rooms.load(id)
    const rejectedBefore = rooms.stats.rejected
    const old: MessageEntry = {
      v: 1,
      room: id,
      author: bob.did,
      authorMesh: meshA.did,
      body: 'posted in 1999',
      mentions: [],
      ts: Date.parse('1999-12-31T23:59:00Z'),
    }
    doc.getMap('messages').set(contentId(old), old)
    await until(() => rooms.stats.rejected > rejectedBefore, 'the refusal')
    assert.equal(room.message(contentId(old)), undefined)
    const sentinel = await rooms.post(id, alice.did, 'sentinel after the backdated write')
    await until(() => doc.getMap('messages').has(sentinel.id), 'the sentinel at the client')
  })

  it('closes with 4401 on a bad token and 4403 for a non-member', async (t) => {
    const { port, token, id } = await setup(t)
    const bad = provider(t, port, id, 'not-a-token')
    assert.equal(await closeCode(bad), 4401)
    const outsider = provider(t, port, id, await token(mallory))
    assert.equal(await closeCode(outsider), 4403)
    const noRoom = provider(t, port, 'nosuchroomhere', await token(alice))
    assert.equal(await closeCode(noRoom), 4403)
  })

  it('drops a read-only member’s writes and awareness impersonation', async (t) => {
    const { rooms, port, token, id } = await setup(t)
    const room = await rooms.load(id)
    await makeBobReadOnly(room)

    const aliceDoc = new Y.Doc()
    const pa = provider(t, port, id, await token(alice), aliceDoc)
    pa.awareness.setLocalStateField('user', { name: 'alice' })
    const bobDoc = new Y.Doc()
    const pb = provider(t, port, id, await token(bob), bobDoc)
    await until(() => pa.synced && pb.synced, 'sync')
    const entry: MessageEntry = {
      v: 1,
      room: id,
      author: bob.did,
      authorMesh: meshA.did,
      body: 'read-only bob',
      mentions: [],
      ts: Date.now(),
    }
    bobDoc.getMap('messages').set(contentId(entry), entry)
    // Others see a client's presence under a pseudonym, stamped with its session's did.
    const aliceState = () =>
      [...pb.awareness.getStates().entries()].find(([, s]) => (s as { did?: string }).did === alice.did)
    await until(() => aliceState() !== undefined, 'alice’s stamped awareness at bob')
    assert.notEqual(aliceState()?.[0], aliceDoc.clientID)

    // Bob's socket claims alice's awareness client id: dropped.
    const raw = new WebSocket(
      `ws://127.0.0.1:${port}/yjs/${id}?token=${await ticketFor(port, id, await token(bob))}`,
    )
    t.after(() => raw.close())
    await new Promise((resolve) => raw.once('open', resolve))
    const inner = encoding.createEncoder()
    encoding.writeVarUint(inner, 1)
    encoding.writeVarUint(inner, aliceDoc.clientID)
    encoding.writeVarUint(inner, 1000)
    encoding.writeVarString(inner, JSON.stringify({ user: { name: 'evil' } }))
    const frame = encoding.createEncoder()
    encoding.writeVarUint(frame, 1)
    encoding.writeVarUint8Array(frame, encoding.toUint8Array(inner))
    const rejectedBefore = rooms.stats.rejected
    raw.send(encoding.toUint8Array(frame))
    await until(() => rooms.stats.rejected > rejectedBefore, 'the impersonation refusal')
    const sentinel = await rooms.post(id, alice.did, 'sentinel')
    await until(() => bobDoc.getMap('messages').has(sentinel.id), 'sentinel at bob')
    assert.equal(room.message(contentId(entry)), undefined, 'the read-only write was dropped')
    const state = aliceState()?.[1] as { user?: { name: string } }
    assert.equal(state.user?.name, 'alice')
    assert.ok(![...pb.awareness.getStates().values()].some((s) => JSON.stringify(s).includes('evil')))
  })
})

describe('y-websocket tickets: no session token in a URL', () => {
  it('a ticket is single-use and bound to its room; a session token in the URL is refused', async (t) => {
    const { rooms, port, token } = await server(t)
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    const { id: other } = await rooms.create({ name: 'other', creator: alice.did })
    const ta = await token(alice)
    assert.equal(await rawSocket(t, port, id, ta).outcome, 4401)
    const ticket = (await ticketFor(port, id, ta)) as string
    const first = rawSocket(t, port, id, ticket)
    await first.firstMessage
    assert.equal(await rawSocket(t, port, id, ticket).outcome, 4401)
    const wrongRoom = rawSocket(t, port, other, (await ticketFor(port, id, ta)) as string)
    assert.equal(await wrongRoom.outcome, 4403)
    // No ticket without a session.
    assert.equal(await ticketFor(port, id, 'not-a-token'), undefined)
  })

  it('an expired ticket is refused with 4401', async (t) => {
    const { rooms, port, token } = await server(t, { ttlMs: 1 })
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    const res = await fetch(`http://127.0.0.1:${port}/api/rooms/${id}/yjs-ticket`, {
      method: 'POST',
      headers: auth(await token(alice)),
    })
    const { ticket, expiresAt } = (await res.json()) as { ticket: string; expiresAt: string }
    await until(() => Date.now() > Date.parse(expiresAt), 'the ticket to expire')
    assert.equal(await rawSocket(t, port, id, ticket).outcome, 4401)
  })

  it("logout closes the session's live y-websockets (4401) and voids its unused tickets", async (t) => {
    const { app, rooms, port, token } = await server(t)
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    await rooms.join(id, bob.did)
    const ta = await token(alice)
    const live = rawSocket(t, port, id, (await ticketFor(port, id, ta)) as string)
    await live.firstMessage
    const unused = (await ticketFor(port, id, ta)) as string
    const bobs = rawSocket(t, port, id, (await ticketFor(port, id, await token(bob))) as string)
    const out = await app.inject({ method: 'DELETE', url: '/api/session', headers: auth(ta) })
    assert.equal(out.statusCode, 204)
    assert.equal(await live.closed, 4401)
    assert.equal(await rawSocket(t, port, id, unused).outcome, 4401)
    // Sentinel: another session's socket is untouched.
    await bobs.firstMessage
    assert.equal(bobs.ws.readyState, WebSocket.OPEN)
  })
})
