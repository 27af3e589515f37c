import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import * as encoding from 'lib0/encoding'
import { Registry } from 'prom-client'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { type SessionRole, SessionService, sessionChallengeText } from '../../src/auth/index.ts'
import { createHttpApp, requireSession } from '../../src/http/index.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import {
  contentId,
  type MessageEntry,
  registerRoomRoutes,
  registerYjsWebsocket,
  sealKey,
} from '../../src/rooms/index.ts'
import { tempStore } from '../fixtures/principals.ts'
import { alice, bob, mallory, manager, meshA } from './helpers.ts'

const ROLES: Record<string, SessionRole> = {
  [alice.did]: 'architect',
  [bob.did]: 'human',
  [mallory.did]: 'human',
}

async function server(t: TestContext) {
  const store = await tempStore(t)
  const rooms = await manager(t, meshA, { store })
  const sessions = new SessionService({ store, meshDid: meshA.did, roleOf: async (did) => ROLES[did] })
  const app = createHttpApp({ logger: silentLogger(), metrics: new Registry() })
  registerRoomRoutes(app, { rooms, authenticate: requireSession(sessions) })
  await registerYjsWebsocket(app, { rooms, sessions })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const token = async (key: Ed25519KeyPair) => {
    const { nonce } = sessions.challenge()
    const signature = Buffer.from(
      key.sign(new TextEncoder().encode(sessionChallengeText(meshA.did, nonce))),
    ).toString('base64url')
    return (await sessions.open({ did: key.did, nonce, signature })).token
  }
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

function provider(t: TestContext, port: number, room: string, token: string, doc = new Y.Doc()) {
  const p = new WebsocketProvider(`ws://127.0.0.1:${port}/yjs`, room, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  })
  t.after(() => {
    p.destroy()
    doc.destroy() // also stops the provider's awareness timer
  })
  return p
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
    const ro = {
      v: 1 as const,
      room: id,
      did: bob.did,
      mesh: meshA.did,
      meshName: 'alpha',
      localId: 'bob',
      role: 'read-only' as const,
      tier: 4 as const,
      ts: Date.now() + 1,
    }
    await room.write([{ map: 'members', key: contentId(ro), value: ro }])

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
    const raw = new WebSocket(`ws://127.0.0.1:${port}/yjs/${id}?token=${await token(bob)}`)
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
