import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { Registry } from 'prom-client'
import { WebSocket } from 'ws'
import { type SessionRole, SessionService } from '../../src/auth/index.ts'
import { createHttpApp, decorateSessions, roomRoutes, yjsRoutes } from '../../src/http/index.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { tempStore } from '../fixtures/principals.ts'
import { alice, bob, carol, mallory, manager, meshA, PRINCIPALS, sessionToken } from './helpers.ts'

// alice (architect) and bob are principals of meshA; carol is added here as a third one.
const ROLES: Record<string, SessionRole> = {
  [alice.did]: 'architect',
  [bob.did]: 'human',
  [carol.did]: 'human',
  [mallory.did]: 'human',
}

async function server(t: TestContext) {
  const store = await tempStore(t)
  const principals = { ...PRINCIPALS[meshA.did], [carol.did]: { localId: 'carol', tier: 4 as const } }
  const rooms = await manager(t, meshA, { store, localPrincipal: async (did) => principals[did] })
  const sessions = new SessionService({ store, meshDid: meshA.did, roleOf: async (did) => ROLES[did] })
  const app = createHttpApp({ logger: silentLogger(), metrics: new Registry() })
  decorateSessions(app, sessions)
  await app.register(roomRoutes, { rooms })
  await app.register(yjsRoutes, { rooms, sessions })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const token = (key: Ed25519KeyPair) => sessionToken(sessions, meshA.did, key)
  const as = async (key: Ed25519KeyPair) => {
    const headers = { authorization: `Bearer ${await token(key)}` }
    const call = async (method: 'GET' | 'POST', url: string, payload?: object) => {
      const res = await app.inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) })
      return { status: res.statusCode, body: res.json() }
    }
    // A y-websocket ticket: the room is checked when it is used, not when it is issued.
    const ticket = async (room: string) =>
      (await call('POST', `/api/rooms/${room}/yjs-ticket`, {})).body.ticket
    return { call, ticket }
  }
  return { rooms, port, as }
}

/** The close code the y-websocket endpoint answers a connection to `room` with. */
function wsClose(port: number, room: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/yjs/${room}?token=${token}`)
    ws.on('close', (code) => resolve(code))
    ws.on('error', reject)
  })
}

describe('room visibility for local principals', () => {
  it('an invite room and a DM are invisible to non-members everywhere; an invite by a moderator admits; a public room stays open', async (t) => {
    const { rooms, port, as } = await server(t)
    const architect = await as(alice)
    const other = await as(bob) // a local principal, not invited
    const stranger = await as(mallory) // signs in, but no principal of this mesh

    const secret = await architect.call('POST', '/api/rooms', {
      name: 'board',
      topic: 'salaries',
      visibility: 'invite',
    })
    assert.equal(secret.status, 201)
    assert.equal(secret.body.visibility, 'invite')
    const open = await architect.call('POST', '/api/rooms', { name: 'general' })
    assert.equal(open.body.visibility, 'public') // the default
    assert.equal(
      (await architect.call('POST', '/api/rooms', { name: 'x', visibility: 'secret' })).status,
      400,
    )
    const posted = await architect.call('POST', `/api/rooms/${secret.body.id}/messages`, { body: 'raises' })
    assert.equal(posted.status, 201)
    const dm = await rooms.create({
      name: 'dm alice-carol',
      topic: 'direct message',
      creator: alice.did,
      dm: true,
    })
    await rooms.join(dm.id, carol.did) // the node's own admission of the DM's other participant

    // Not listed, not shown, not readable, not joinable, no post, no sync, no socket: all "no such room".
    for (const who of [other, stranger]) {
      const listed = (await who.call('GET', '/api/rooms')).body.rooms.map((r: { id: string }) => r.id)
      assert.deepEqual(listed, [open.body.id])
      for (const id of [secret.body.id, dm.id]) {
        for (const [method, url, payload] of [
          ['GET', `/api/rooms/${id}`],
          ['GET', `/api/rooms/${id}/messages`],
          ['GET', `/api/rooms/${id}/members`],
          ['POST', `/api/rooms/${id}/join`],
          ['POST', `/api/rooms/${id}/messages`, { body: 'let me in' }],
          ['POST', `/api/rooms/${id}/invite`, { did: bob.did }],
        ] as const) {
          const res = await who.call(method, url, payload)
          assert.equal(res.status, 404, `${method} ${url}: ${JSON.stringify(res.body)}`)
          assert.equal(res.body.error.code, 'MESH_NOT_FOUND')
        }
        assert.equal(await wsClose(port, id, await who.ticket(id)), 4403)
      }
    }
    // The same answer as for a room that does not exist.
    assert.equal((await other.call('GET', '/api/rooms/0123456789abcdef')).body.error.code, 'MESH_NOT_FOUND')

    // A DM admits no one else, even by its participants.
    const carolS = await as(carol)
    assert.deepEqual(
      (await carolS.call('GET', '/api/rooms')).body.rooms.map((r: { id: string }) => r.id).sort(),
      [dm.id, open.body.id].sort(),
    )
    const intoDm = await architect.call('POST', `/api/rooms/${dm.id}/invite`, { did: bob.did })
    assert.equal(intoDm.status, 403)
    assert.equal(intoDm.body.error.details.reason, 'dm')

    // A plain member may not invite; the owner may; the invitee then sees and reads the room.
    await architect.call('POST', `/api/rooms/${secret.body.id}/invite`, { did: carol.did })
    const byMember = await carolS.call('POST', `/api/rooms/${secret.body.id}/invite`, { did: bob.did })
    assert.equal(byMember.status, 403)
    const invited = await architect.call('POST', `/api/rooms/${secret.body.id}/invite`, { did: bob.did })
    assert.equal(invited.status, 201)
    assert.equal(invited.body.role, 'member')
    assert.ok(
      (await other.call('GET', '/api/rooms')).body.rooms.some((r: { id: string }) => r.id === secret.body.id),
    )
    const read = await other.call('GET', `/api/rooms/${secret.body.id}/messages`)
    assert.deepEqual(
      read.body.messages.map((m: { body: string }) => m.body),
      ['raises'],
    )
    assert.equal(
      (await architect.call('POST', `/api/rooms/${secret.body.id}/invite`, { did: mallory.did })).status,
      403,
    )

    // A public room: listed to all, joinable, readable once joined.
    assert.equal((await other.call('GET', `/api/rooms/${open.body.id}`)).status, 200)
    assert.equal((await other.call('GET', `/api/rooms/${open.body.id}/messages`)).status, 403)
    assert.equal((await other.call('POST', `/api/rooms/${open.body.id}/join`)).status, 200)
    assert.equal((await other.call('GET', `/api/rooms/${open.body.id}/messages`)).status, 200)
  })

  it('rooms stored before visibility: a DM or a room homed elsewhere reads as invite, one of ours as public', async (t) => {
    const { rooms } = await server(t)
    const ours = await rooms.create({ name: 'old', creator: alice.did })
    const legacy = { ...ours }
    delete legacy.visibility
    assert.equal(rooms.visibilityOf(legacy), 'public')
    assert.equal(rooms.visibilityOf({ ...legacy, dm: true }), 'invite')
    assert.equal(rooms.visibilityOf({ ...legacy, homeMesh: mallory.did }), 'invite')
    await rooms.markDm(ours.id)
    assert.equal((await rooms.record(ours.id)).visibility, 'invite')
    assert.equal((await rooms.record(ours.id)).dm, true)
  })
})
