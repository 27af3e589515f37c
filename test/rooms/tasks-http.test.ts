/**
 * Tasks across meshes (SPEC §13) over HTTP: the routes of src/http/routes/tasks.ts as a
 * client calls them, and what they refuse.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { Registry } from 'prom-client'
import { TASK_API_LIMITS } from '../../src/api/index.ts'
import { type SessionRole, SessionService } from '../../src/auth/index.ts'
import { createHttpApp, registerSessionRoutes, roomRoutes } from '../../src/http/index.ts'
import { taskRoutes } from '../../src/http/routes/tasks.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { TASK_LIMITS } from '../../src/rooms/index.ts'
import { tempStore } from '../fixtures/principals.ts'
import { alice, bob, mallory, manager, meshA, sessionToken } from './helpers.ts'

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
  registerSessionRoutes(app, sessions)
  await app.register(roomRoutes, { rooms })
  await app.register(taskRoutes, { rooms })
  t.after(() => app.close())
  const token = (key: Ed25519KeyPair) => sessionToken(sessions, meshA.did, key)
  const as = async (key: Ed25519KeyPair) => {
    const authorization = `Bearer ${await token(key)}`
    return async (method: 'GET' | 'POST', url: string, payload?: object) => {
      const res = await app.inject({
        method,
        url,
        headers: { authorization },
        ...(payload ? { payload } : {}),
      })
      return { status: res.statusCode, body: res.json() }
    }
  }
  return { app, rooms, as }
}

describe('tasks over HTTP', () => {
  it('create, list, assign by @name, move, comment, due; refusals carry MESH_ codes', async (t) => {
    const { app, as } = await server(t)
    const a = await as(alice)
    const b = await as(bob)
    const m = await as(mallory)
    const room = (await a('POST', '/api/rooms', { name: 'work' })).body.id as string
    assert.equal((await b('POST', `/api/rooms/${room}/join`)).status, 200)

    const created = await a('POST', `/api/rooms/${room}/tasks`, {
      title: 'Plan',
      body: 'the plan',
      due: 1_800_000_000_000,
    })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    const id = created.body.id as string
    assert.equal(created.body.status, 'open')
    assert.equal(created.body.createdBy.name, '@alice')

    const assigned = await a('POST', `/api/rooms/${room}/tasks/${id}/assign`, { assignee: '@bob' })
    assert.equal(assigned.status, 200, JSON.stringify(assigned.body))
    assert.equal(assigned.body.assignee.did, bob.did)
    // The assignment is announced in the room with a mention of bob.
    const msgs = (await b('GET', `/api/rooms/${room}/messages`)).body.messages as Array<{
      body: string
      mentions: string[]
    }>
    const announced = msgs.find((x) => x.body.includes('Plan'))
    assert.deepEqual(announced?.mentions, [bob.did])
    // A name in a title is not a mention: only the assignee is told.
    const named = (await a('POST', `/api/rooms/${room}/tasks`, { title: 'Review with @bob' })).body
      .id as string
    await a('POST', `/api/rooms/${room}/tasks/${named}/assign`, { assignee: '@alice' })
    const again = (await b('GET', `/api/rooms/${room}/messages`)).body.messages as Array<{
      body: string
      mentions: string[]
    }>
    assert.deepEqual(again.find((x) => x.body.includes('Review with'))?.mentions, [alice.did])

    assert.equal(
      (await b('POST', `/api/rooms/${room}/tasks/${id}/status`, { status: 'doing' })).body.status,
      'doing',
    )
    const commented = await b('POST', `/api/rooms/${room}/tasks/${id}/comment`, { body: 'on it' })
    assert.deepEqual(
      commented.body.comments.map((c: { author: { name: string }; body: string }) => [c.author.name, c.body]),
      [['@bob', 'on it']],
    )
    assert.equal((await a('POST', `/api/rooms/${room}/tasks/${id}/due`, { due: null })).body.due, null)
    assert.equal(
      (await b('POST', `/api/rooms/${room}/tasks/${id}/status`, { status: 'done' })).body.status,
      'done',
    )

    const list = await a('GET', `/api/rooms/${room}/tasks`)
    assert.equal(list.body.tasks.length, 2)
    assert.deepEqual(
      (await a('GET', `/api/rooms/${room}/tasks?status=open`)).body.tasks.map((x: { id: string }) => x.id),
      [named],
    )
    assert.equal((await a('GET', `/api/rooms/${room}/tasks/${id}`)).body.status, 'done')

    // Refusals.
    const code = (r: { body: { error?: { code: string; details?: { reason?: string } } } }) =>
      `${r.body.error?.code} ${r.body.error?.details?.reason ?? ''}`.trim()
    // mallory is no member: she sees the public room but writes nothing to it.
    assert.equal(
      code(await m('POST', `/api/rooms/${room}/tasks/${id}/status`, { status: 'open' })),
      'MESH_FORBIDDEN not-member',
    )
    assert.equal(
      code(await m('POST', `/api/rooms/${room}/tasks`, { title: 'x' })),
      'MESH_FORBIDDEN not-member',
    )
    // bob, no moderator, moves only what is assigned to him.
    const other = (await a('POST', `/api/rooms/${room}/tasks`, { title: 'Other' })).body.id as string
    assert.equal(
      code(await b('POST', `/api/rooms/${room}/tasks/${other}/status`, { status: 'done' })),
      'MESH_FORBIDDEN task-rules',
    )
    assert.equal(
      code(await a('POST', `/api/rooms/${room}/tasks/${other}/assign`, { assignee: '@nobody' })),
      'MESH_NOT_FOUND',
    )
    assert.equal(
      code(await a('POST', `/api/rooms/${room}/tasks/${other}/assign`, { assignee: '@mallory' })),
      'MESH_NOT_FOUND',
    )
    assert.equal(
      code(await a('POST', `/api/rooms/${room}/tasks/${'A'.repeat(43)}/status`, { status: 'done' })),
      'MESH_NOT_FOUND',
    )
    // Malformed and oversized input.
    for (const [url, payload] of [
      [`/api/rooms/${room}/tasks`, { title: '' }],
      [`/api/rooms/${room}/tasks`, { title: 'x'.repeat(TASK_API_LIMITS.maxTitleBytes + 1) }],
      [`/api/rooms/${room}/tasks`, { title: 'ok', extra: true }],
      [`/api/rooms/${room}/tasks`, { title: 'ok', due: -5 }],
      [`/api/rooms/${room}/tasks/${id}/status`, { status: 'finished' }],
      [`/api/rooms/${room}/tasks/short/status`, { status: 'done' }],
      [`/api/rooms/${room}/tasks/${id}/comment`, { body: 'x'.repeat(TASK_API_LIMITS.maxBodyBytes + 1) }],
      [`/api/rooms/${room}/tasks/${id}/assign`, { assignee: 'x'.repeat(300) }],
    ] as const)
      assert.equal(
        code(await a('POST', url, payload)),
        'MESH_BAD_REQUEST',
        `${url} ${JSON.stringify(payload).slice(0, 60)}`,
      )
    // A title of multi-byte characters within the length limit but over the byte limit.
    assert.equal(
      code(await a('POST', `/api/rooms/${room}/tasks`, { title: 'é'.repeat(200) })),
      'MESH_BAD_REQUEST',
    )
    // No session.
    const anon = await app.inject({ method: 'GET', url: `/api/rooms/${room}/tasks` })
    assert.equal(anon.json().error.code, 'MESH_UNAUTHENTICATED')
  })

  it('the API’s limits are the room’s', () => {
    assert.equal(TASK_API_LIMITS.maxTitleBytes, TASK_LIMITS.maxTitleBytes)
    assert.equal(TASK_API_LIMITS.maxBodyBytes, TASK_LIMITS.maxBodyBytes)
    assert.equal(TASK_API_LIMITS.maxDue, TASK_LIMITS.maxDue)
  })
})
