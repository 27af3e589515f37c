import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { Registry } from 'prom-client'
import {
  AuditLog,
  type ConsistencyProof,
  checkConsistencyProof,
  checkInclusionProof,
  type InclusionProof,
  parseTreeHead,
  type SignedTreeHead,
} from '../../src/audit/index.ts'
import { auditMerkleRoutes, createHttpApp } from '../../src/http/index.ts'
import { silentLogger } from '../../src/log.ts'
import { alice, bob, tempStore } from '../fixtures/principals.ts'
import { auth, stubSession } from '../fixtures/stub-session.ts'

async function server(t: TestContext, rows: number) {
  const store = await tempStore(t)
  const audit = new AuditLog({ store, key: alice })
  await audit.start()
  t.after(() => audit.stop())
  for (let i = 0; i < rows; i++) {
    await audit.append({ action: 'federation.connection.accepted', actor: bob.did, subject: `c${i}` })
  }
  const app = createHttpApp({ logger: silentLogger(), metrics: new Registry() })
  app.decorate('requireSession', stubSession)
  await app.register(auditMerkleRoutes, { audit })
  t.after(() => app.close())
  const get = async <T>(url: string, headers: Record<string, string> = auth) => {
    const res = await app.inject({ method: 'GET', url, headers })
    return { status: res.statusCode, body: res.json() as T & { error?: { code: string } } }
  }
  return { audit, get }
}

describe('audit Merkle routes', () => {
  it('need a session', async (t) => {
    const { get } = await server(t, 1)
    for (const url of [
      '/api/audit/sth',
      '/api/audit/proof/inclusion?seq=1',
      '/api/audit/proof/consistency?from=0',
    ]) {
      const res = await get(url, {})
      assert.equal(res.status, 401, url)
      assert.equal(res.body.error?.code, 'MESH_UNAUTHENTICATED')
    }
  })

  it('GET /api/audit/sth is the signed head; the proofs verify against it', async (t) => {
    const { audit, get } = await server(t, 11)
    const sth = await get<SignedTreeHead>('/api/audit/sth')
    assert.equal(sth.status, 200)
    const head = parseTreeHead(sth.body, audit.knownKeys())
    assert.equal(head.size, 11)
    const inclusion = await get<InclusionProof>('/api/audit/proof/inclusion?seq=4')
    assert.equal(inclusion.status, 200)
    assert.equal(inclusion.body.row.subject, 'c3')
    checkInclusionProof(inclusion.body, head)
    const older = await get<InclusionProof>('/api/audit/proof/inclusion?seq=4&size=6')
    assert.equal(older.body.size, 6)

    await audit.append({ action: 'federation.connection.declined', subject: 'later' })
    const newer = parseTreeHead((await get<SignedTreeHead>('/api/audit/sth')).body, audit.knownKeys())
    const proof = await get<ConsistencyProof>(`/api/audit/proof/consistency?from=${head.size}`)
    assert.equal(proof.status, 200)
    assert.equal(proof.body.to, 12)
    checkConsistencyProof(proof.body, head, newer)
    const between = await get<ConsistencyProof>('/api/audit/proof/consistency?from=3&to=7')
    assert.deepEqual([between.body.from, between.body.to], [3, 7])
  })

  it('bad input is MESH_BAD_REQUEST, a position past the log MESH_NOT_FOUND', async (t) => {
    const { get } = await server(t, 5)
    const cases: [string, number, string][] = [
      ['/api/audit/proof/inclusion', 400, 'MESH_BAD_REQUEST'],
      ['/api/audit/proof/inclusion?seq=abc', 400, 'MESH_BAD_REQUEST'],
      ['/api/audit/proof/inclusion?seq=-1', 400, 'MESH_BAD_REQUEST'],
      ['/api/audit/proof/inclusion?seq=0', 400, 'MESH_BAD_REQUEST'],
      [`/api/audit/proof/inclusion?seq=${'9'.repeat(17)}`, 400, 'MESH_BAD_REQUEST'],
      ['/api/audit/proof/inclusion?seq=1&other=2', 400, 'MESH_BAD_REQUEST'],
      ['/api/audit/proof/inclusion?seq=4&size=3', 400, 'MESH_BAD_REQUEST'],
      ['/api/audit/proof/inclusion?seq=6', 404, 'MESH_NOT_FOUND'],
      ['/api/audit/proof/inclusion?seq=1&size=6', 404, 'MESH_NOT_FOUND'],
      ['/api/audit/proof/consistency', 400, 'MESH_BAD_REQUEST'],
      ['/api/audit/proof/consistency?from=4&to=2', 400, 'MESH_BAD_REQUEST'],
      ['/api/audit/proof/consistency?from=1.5', 400, 'MESH_BAD_REQUEST'],
      ['/api/audit/proof/consistency?from=6', 404, 'MESH_NOT_FOUND'],
      ['/api/audit/proof/consistency?from=1&to=99', 404, 'MESH_NOT_FOUND'],
    ]
    for (const [url, status, code] of cases) {
      const res = await get(url)
      assert.equal(res.status, status, url)
      assert.equal(res.body.error?.code, code, url)
    }
  })
})
