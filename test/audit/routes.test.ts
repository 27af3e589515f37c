import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { Registry } from 'prom-client'
import {
  type AuditCheckpoint,
  AuditLog,
  type AuditPage,
  type AuditRow,
  type AuditVerifyReport,
  signCheckpoint,
} from '../../src/audit/index.ts'
import { auditRoutes, createHttpApp } from '../../src/http/index.ts'
import { silentLogger } from '../../src/log.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'
import { auth, stubSession } from '../fixtures/stub-session.ts'

async function server(
  t: TestContext,
  rows = 0,
  names?: { namesOf(dids: Iterable<string>): Promise<Map<string, string>> },
) {
  const store = await tempStore(t)
  const audit = new AuditLog({ store, key: alice })
  await audit.start()
  t.after(() => audit.stop())
  for (let i = 0; i < rows; i++) {
    await audit.append({
      action: i % 3 === 0 ? 'federation.connection.declined' : 'federation.connection.accepted',
      actor: bob.did,
      subject: `c${i}`,
      details: { i },
    })
  }
  const app = createHttpApp({ logger: silentLogger(), metrics: new Registry() })
  app.decorate('requireSession', stubSession)
  await app.register(auditRoutes, { audit, ...(names !== undefined ? { names } : {}) })
  t.after(() => app.close())
  return { app, audit, store }
}

const errorCode = (res: { json: () => unknown }) => (res.json() as { error: { code: string } }).error.code

describe('audit routes', () => {
  it('require a session', async (t) => {
    const { app } = await server(t, 2)
    for (const url of ['/api/audit', '/api/audit/verify', '/api/audit/checkpoint']) {
      const res = await app.inject({ method: 'GET', url })
      assert.equal(res.statusCode, 401)
      assert.equal(errorCode(res), 'MESH_UNAUTHENTICATED')
      const wrong = await app.inject({ method: 'GET', url, headers: { authorization: 'Bearer nope' } })
      assert.equal(wrong.statusCode, 401)
    }
  })

  it('GET /api/audit pages signed rows by after, limit and action', async (t) => {
    const { app, audit } = await server(t, 12)
    const res = await app.inject({ method: 'GET', url: '/api/audit?limit=5', headers: auth })
    assert.equal(res.statusCode, 200)
    const page = res.json() as AuditPage
    assert.deepEqual(
      page.entries.map((r) => r.seq),
      [1, 2, 3, 4, 5],
    )
    assert.equal(page.nextCursor, 5)
    const row = page.entries[0] as AuditRow
    assert.deepEqual(Object.keys(row).sort(), [
      'action',
      'actor',
      'details',
      'hash',
      'prev',
      'seq',
      'signature',
      'signer',
      'subject',
      'ts',
    ])
    assert.deepEqual(row, (await audit.list({ limit: 1 })).entries[0])

    const next = await app.inject({ method: 'GET', url: '/api/audit?after=5&limit=100', headers: auth })
    const rest = next.json() as AuditPage
    assert.deepEqual(
      rest.entries.map((r) => r.seq),
      [6, 7, 8, 9, 10, 11, 12],
    )
    assert.equal(rest.nextCursor, null)

    const declined = await app.inject({
      method: 'GET',
      url: '/api/audit?action=federation.connection.decl',
      headers: auth,
    })
    assert.deepEqual(
      (declined.json() as AuditPage).entries.map((r) => r.seq),
      [1, 4, 7, 10],
    )
  })

  it('GET /api/audit?order=newest pages newest first by before; a page names its actors (issue 14)', async (t) => {
    const names = {
      namesOf: async (dids: Iterable<string>) =>
        new Map([...dids].filter((d) => d === bob.did).map((d) => [d, '@bob'] as [string, string])),
    }
    const { app } = await server(t, 12, names)
    const get = async (query: string) =>
      (await app.inject({ method: 'GET', url: `/api/audit?${query}`, headers: auth })).json() as AuditPage & {
        names?: Record<string, string>
      }
    const first = await get('order=newest&limit=5')
    assert.deepEqual(
      first.entries.map((r) => r.seq),
      [12, 11, 10, 9, 8],
    )
    assert.equal(first.nextCursor, 8)
    assert.deepEqual(first.names, { [bob.did]: '@bob' })
    const second = await get('order=newest&before=8&limit=5')
    assert.deepEqual(
      second.entries.map((r) => r.seq),
      [7, 6, 5, 4, 3],
    )
    const last = await get('order=newest&before=3&limit=5')
    assert.deepEqual(
      last.entries.map((r) => r.seq),
      [2, 1],
    )
    assert.equal(last.nextCursor, null)
    const declined = await get('order=newest&action=federation.connection.decl&limit=2')
    assert.deepEqual(
      declined.entries.map((r) => r.seq),
      [10, 7],
    )
    for (const bad of ['order=sideways', 'order=newest&before=0', 'before=abc']) {
      const res = await app.inject({ method: 'GET', url: `/api/audit?${bad}`, headers: auth })
      assert.equal(errorCode(res), 'MESH_BAD_REQUEST', bad)
    }
  })

  it('GET /api/audit refuses bad and unknown query fields with MESH_BAD_REQUEST', async (t) => {
    const { app } = await server(t, 1)
    for (const query of [
      'limit=0',
      'limit=501',
      'limit=abc',
      'after=-1',
      'action=Bad%20Action',
      'cursor=1',
    ]) {
      const res = await app.inject({ method: 'GET', url: `/api/audit?${query}`, headers: auth })
      assert.equal(res.statusCode, 400, query)
      assert.equal(errorCode(res), 'MESH_BAD_REQUEST', query)
    }
  })

  it('GET /api/audit/verify reports ok, then the tampered seq', async (t) => {
    const { app, store } = await server(t, 6)
    const ok = await app.inject({ method: 'GET', url: '/api/audit/verify', headers: auth })
    assert.equal(ok.statusCode, 200)
    const good = ok.json() as AuditVerifyReport
    assert.equal(good.ok, true)
    assert.equal(good.count, 6)
    assert.equal(good.head?.seq, 6)
    assert.deepEqual(good.problems, [])

    const key = `entry/v1/${String(4).padStart(16, '0')}`
    const sub = store.sublevel<AuditRow>('audit')
    const row = (await sub.get(key)) as AuditRow
    await sub.put(key, { ...row, subject: 'someone-else' })
    const bad = (
      await app.inject({ method: 'GET', url: '/api/audit/verify', headers: auth })
    ).json() as AuditVerifyReport
    assert.equal(bad.ok, false)
    assert.deepEqual(
      bad.problems.map((p) => [p.seq, p.kind]),
      [[4, 'altered']],
    )
    assert.equal(typeof bad.problems[0]?.message, 'string')
  })

  it('GET /api/audit/checkpoint, then verify against it (GET ?checkpoint=, POST): a truncation with a rolled-back head fails only that way', async (t) => {
    const { app, store } = await server(t, 9)
    const res = await app.inject({ method: 'GET', url: '/api/audit/checkpoint', headers: auth })
    assert.equal(res.statusCode, 200)
    const checkpoint = res.json() as AuditCheckpoint
    assert.equal(checkpoint.mesh, alice.did)
    assert.equal(checkpoint.signer, alice.did)
    assert.equal(checkpoint.size, 9)
    const param = Buffer.from(JSON.stringify(checkpoint)).toString('base64url')
    const verifyGet = async () =>
      (
        await app.inject({ method: 'GET', url: `/api/audit/verify?checkpoint=${param}`, headers: auth })
      ).json() as AuditVerifyReport
    const verifyPost = async () =>
      (
        await app.inject({ method: 'POST', url: '/api/audit/verify', headers: auth, payload: { checkpoint } })
      ).json() as AuditVerifyReport
    assert.equal((await verifyGet()).ok, true)
    assert.equal((await verifyPost()).ok, true)

    // The attack: cut the last three rows and roll the head back with them.
    const sub = store.sublevel<unknown>('audit')
    const six = (await sub.get(`entry/v1/${String(6).padStart(16, '0')}`)) as AuditRow
    await sub.batch([
      ...[7, 8, 9].map((seq) => ({ type: 'del' as const, key: `entry/v1/${String(seq).padStart(16, '0')}` })),
      { type: 'put', key: 'head/v1', value: { seq: 6, hash: six.hash } },
    ])
    const plain = (await app.inject({ method: 'GET', url: '/api/audit/verify', headers: auth })).json()
    assert.equal((plain as AuditVerifyReport).ok, true, 'the log alone still verifies')
    for (const report of [await verifyGet(), await verifyPost()]) {
      assert.equal(report.ok, false)
      assert.ok(
        report.problems.some((p) => p.kind === 'truncated' && /truncated or rolled back/.test(p.message)),
        JSON.stringify(report.problems),
      )
    }
  })

  it('verify refuses a checkpoint that is malformed, forged, or of another mesh', async (t) => {
    const { app, audit } = await server(t, 2)
    const good = audit.checkpoint()
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
    const cases: Array<[string, number, string]> = [
      ['%%%', 400, 'MESH_BAD_REQUEST'],
      [Buffer.from('not json').toString('base64url'), 400, 'MESH_BAD_REQUEST'],
      [b64({ ...good, size: 'x' }), 400, 'MESH_BAD_REQUEST'],
      [b64({ ...good, size: 1 }), 401, 'MESH_SIGNATURE_MISMATCH'],
      [b64(signCheckpoint(mallory, { ...good, head: good.head })), 401, 'MESH_SIGNATURE_MISMATCH'],
      [b64(signCheckpoint(alice, { ...good, mesh: bob.did })), 400, 'MESH_BAD_REQUEST'],
    ]
    for (const [param, status, code] of cases) {
      const res = await app.inject({
        method: 'GET',
        url: `/api/audit/verify?checkpoint=${param}`,
        headers: auth,
      })
      assert.equal(res.statusCode, status, param)
      assert.equal(errorCode(res), code, param)
    }
    const post = await app.inject({
      method: 'POST',
      url: '/api/audit/verify',
      headers: auth,
      payload: { checkpoint: good, extra: 1 },
    })
    assert.equal(post.statusCode, 400)
  })
})
