import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { Registry } from 'prom-client'
import { RejectedLog, rejectionFrom } from '../../src/audit/rejected-log.ts'
import { ReplayError, SignatureMismatchError } from '../../src/errors.ts'
import { rejectedRoutes } from '../../src/http/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { alice, bob, mallory, tempDir, tempStore } from '../fixtures/principals.ts'
import { sessionApp } from '../fixtures/session-answer.ts'

const T0 = Date.parse('2026-01-01T00:00:00Z')

async function fill(log: RejectedLog, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const err =
      i % 2 === 0
        ? new SignatureMismatchError('envelope signature does not verify against its origin', { n: i })
        : new ReplayError('envelope id was already received', { reason: 'duplicate', n: i })
    await log.record(rejectionFrom(err, { peer: i % 3 === 0 ? mallory.did : bob.did, kind: 'envelope' }))
  }
}

describe('rejected log', () => {
  it('lists newest first, pages with a cursor and filters by peer and code', async (t) => {
    const log = new RejectedLog({ store: await tempStore(t), now: () => T0 })
    await fill(log, 25)
    const seen: number[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await log.list({ limit: 10, after: cursor })
      seen.push(...page.entries.map((e) => e.details.n as number))
      cursor = page.nextCursor ?? undefined
      pages++
    } while (cursor !== undefined)
    assert.equal(pages, 3)
    assert.deepEqual(
      seen,
      Array.from({ length: 25 }, (_, i) => 24 - i),
    )

    const fromMallory = await log.list({ peer: mallory.did, limit: 200 })
    assert.deepEqual(
      fromMallory.entries.map((e) => e.details.n),
      [24, 21, 18, 15, 12, 9, 6, 3, 0],
    )
    const replays = await log.list({ code: 'MESH_REPLAY', peer: mallory.did, limit: 2 })
    assert.deepEqual(
      replays.entries.map((e) => e.details.n),
      [21, 15],
    )
    const rest = await log.list({
      code: 'MESH_REPLAY',
      peer: mallory.did,
      limit: 2,
      after: replays.nextCursor ?? '',
    })
    assert.deepEqual(
      rest.entries.map((e) => e.details.n),
      [9, 3],
    )
    assert.equal(rest.nextCursor, null)

    const [first] = (await log.list({ limit: 1 })).entries
    assert.deepEqual(first, {
      id: first?.id,
      at: '2026-01-01T00:00:00.000Z',
      peer: mallory.did,
      kind: 'envelope',
      code: 'MESH_SIGNATURE_MISMATCH',
      reason: 'envelope signature does not verify against its origin',
      details: { n: 24 },
    })
    await assert.rejects(log.list({ limit: 0 }), { code: 'MESH_BAD_REQUEST' })
    await assert.rejects(log.list({ after: 'nope' }), { code: 'MESH_BAD_REQUEST' })
  })

  it('keeps only the newest entries, also across a restart', async (t) => {
    const path = join(await tempDir(t), 'db')
    let store = new MeshStore({ path })
    await store.open()
    t.after(() => store.close())
    await fill(new RejectedLog({ store, maxEntries: 5 }), 12)
    await store.close()
    store = new MeshStore({ path })
    await store.open()
    const log = new RejectedLog({ store, maxEntries: 5 })
    assert.equal(await log.size(), 5)
    await log.record({ kind: 'connect.request', code: 'MESH_POLICY_REJECTED', reason: 'denied' })
    const { entries } = await log.list({ limit: 200 })
    assert.deepEqual(
      entries.map((e) => e.details.n ?? e.reason),
      ['denied', 11, 10, 9, 8],
    )
    assert.equal((await store.sublevel('rejected').keys().all()).length, 5)
  })

  it('keeps the default bound of 10 000 under concurrent writers', async (t) => {
    const store = await tempStore(t)
    const log = new RejectedLog({ store })
    const writers = Array.from({ length: 10_050 }, (_, i) =>
      log.record({
        peer: mallory.did,
        kind: 'envelope',
        code: 'MESH_REPLAY',
        reason: 'flood',
        details: { i },
      }),
    )
    await Promise.all(writers)
    assert.equal(await log.size(), 10_000)
    assert.equal((await store.sublevel('rejected').keys().all()).length, 10_000)
    const [newest] = (await log.list({ limit: 1 })).entries
    assert.equal(newest?.details.i, 10_049)
  })

  it('bounds what a peer can make it store, and counts refusals by code', async (t) => {
    const metrics = new Registry()
    const log = new RejectedLog({ store: await tempStore(t), metrics })
    const entry = await log.record({
      peer: mallory.did,
      kind: 'envelope',
      code: 'MESH_BAD_REQUEST',
      reason: 'r'.repeat(10_000),
      details: { blob: 'x'.repeat(10_000) },
    })
    assert.equal(entry.reason.length, 512)
    assert.equal(entry.details.truncated, true)
    await log.record({ kind: 'envelope', code: 'MESH_BAD_REQUEST', reason: 'again' })
    await log.record({ kind: 'envelope', code: 'MESH_REPLAY', reason: 'dup' })
    const text = await metrics.metrics()
    assert.match(text, /mesh_federation_rejected_total\{code="MESH_BAD_REQUEST"\} 2/)
    assert.match(text, /mesh_federation_rejected_total\{code="MESH_REPLAY"\} 1/)
  })
})

describe('GET /api/federation/rejected', () => {
  async function server(t: TestContext) {
    const { store, app, tokenOf } = await sessionApp(t, async (did) =>
      did === alice.did ? 'architect' : undefined,
    )
    const rejected = new RejectedLog({ store })
    await fill(rejected, 7)
    await app.register(rejectedRoutes, { rejected })
    return { app, headers: { authorization: `Bearer ${await tokenOf(alice)}` } }
  }

  it('pages newest first with a cursor, filtered by code', async (t) => {
    const { app, headers } = await server(t)
    const first = await app.inject({ method: 'GET', url: '/api/federation/rejected?limit=3', headers })
    assert.equal(first.statusCode, 200)
    const page = first.json() as { entries: Array<{ details: { n: number } }>; nextCursor: string }
    assert.deepEqual(
      page.entries.map((e) => e.details.n),
      [6, 5, 4],
    )
    const second = await app.inject({
      method: 'GET',
      url: `/api/federation/rejected?limit=3&after=${page.nextCursor}&code=MESH_SIGNATURE_MISMATCH`,
      headers,
    })
    const next = second.json() as {
      entries: Array<{ code: string; details: { n: number } }>
      nextCursor: null
    }
    assert.deepEqual(
      next.entries.map((e) => e.details.n),
      [2, 0],
    )
    assert.equal(next.nextCursor, null)
  })

  it('refuses bad queries and callers without a session', async (t) => {
    const { app, headers } = await server(t)
    for (const query of ['limit=abc', 'limit=0', 'limit=201', 'after=x', 'code=NOPE', 'extra=1']) {
      const res = await app.inject({ method: 'GET', url: `/api/federation/rejected?${query}`, headers })
      assert.equal(res.statusCode, 400, query)
      assert.equal((res.json() as { error: { code: string } }).error.code, 'MESH_BAD_REQUEST')
    }
    const anonymous = await app.inject({ method: 'GET', url: '/api/federation/rejected' })
    assert.equal(anonymous.statusCode, 401)
  })
})
