import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { FastifyRequest } from 'fastify'
import { Registry } from 'prom-client'
import { createHttpApp } from '../../src/http/index.ts'
import { ledgerForgiveRoutes } from '../../src/http/routes/ledger-forgive.ts'
import { silentLogger } from '../../src/log.ts'
import { alice, bob } from '../fixtures/principals.ts'
import { auth, stubSession } from '../fixtures/stub-session.ts'

// relay ledger forgive (SPEC §10): POST /api/ledger/forgive, the architect only.

async function server(t: TestContext) {
  const forgiven: string[] = []
  const app = createHttpApp({ logger: silentLogger(), metrics: new Registry() })
  app.decorate('requireSession', async (request: FastifyRequest) => {
    await stubSession(request)
    if (request.headers['x-role'] === 'human' && request.session !== undefined)
      request.session = { ...request.session, role: 'human' }
  })
  await app.register(ledgerForgiveRoutes, {
    forgive: async (did) => {
      forgiven.push(did)
      return did === bob.did
    },
  })
  t.after(() => app.close())
  const post = async (payload: unknown, headers: Record<string, string> = auth) => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/ledger/forgive',
      headers,
      payload: payload as object,
    })
    return { status: res.statusCode, body: res.json() }
  }
  return { post, forgiven }
}

describe('POST /api/ledger/forgive', () => {
  it('the architect forgives a beneficiary: its cut-off lifted', async (t) => {
    const { post, forgiven } = await server(t)
    assert.deepEqual(await post({ did: bob.did }), { status: 200, body: { did: bob.did, wasCutOff: true } })
    assert.deepEqual((await post({ did: alice.did })).body, { did: alice.did, wasCutOff: false })
    assert.deepEqual(forgiven, [bob.did, alice.did])
  })

  it('needs a session, and the architect: a human is MESH_FORBIDDEN', async (t) => {
    const { post, forgiven } = await server(t)
    assert.equal((await post({ did: bob.did }, {})).body.error.code, 'MESH_UNAUTHENTICATED')
    const member = await post({ did: bob.did }, { ...auth, 'x-role': 'human' })
    assert.equal(member.status, 403)
    assert.equal(member.body.error.code, 'MESH_FORBIDDEN')
    assert.deepEqual(forgiven, [])
  })

  it('refuses a malformed, oversized or extra-field body with MESH_BAD_REQUEST', async (t) => {
    const { post, forgiven } = await server(t)
    for (const body of [
      {},
      { did: 'did:web:x' },
      { did: `did:key:z${'a'.repeat(5000)}` },
      { did: bob.did, extra: 1 },
    ]) {
      const res = await post(body)
      assert.equal(res.status, 400, JSON.stringify(body))
      assert.equal(res.body.error.code, 'MESH_BAD_REQUEST')
    }
    assert.deepEqual(forgiven, [])
  })
})
