import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { Registry } from 'prom-client'
import { SessionService, sessionChallengeText } from '../../src/auth/index.ts'
import { createHttpApp, registerSessionRoutes } from '../../src/http/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'

const mesh = Ed25519KeyPair.generate()

async function app(t: TestContext) {
  const store = await tempStore(t)
  const sessions = new SessionService({
    store,
    meshDid: mesh.did,
    roleOf: async (did) => (did === alice.did ? 'architect' : did === bob.did ? 'agent' : undefined),
  })
  const server = createHttpApp({ logger: silentLogger(), metrics: new Registry() })
  registerSessionRoutes(server, sessions)
  t.after(() => server.close())
  return server
}

const sign = (key: Ed25519KeyPair, text: string) =>
  Buffer.from(key.sign(new TextEncoder().encode(text))).toString('base64url')

async function challenge(server: Awaited<ReturnType<typeof app>>): Promise<string> {
  const res = await server.inject({ method: 'GET', url: '/api/session/challenge' })
  assert.equal(res.statusCode, 200)
  const body = res.json() as { nonce: string; expiresAt: string }
  assert.ok(Date.parse(body.expiresAt) > Date.now())
  return body.nonce
}

function errorCode(res: { json: () => unknown }): string {
  return (res.json() as { error: { code: string } }).error.code
}

describe('session challenge/response', () => {
  it('gives a member a token that authenticates /api/me', async (t) => {
    const server = await app(t)
    const nonce = await challenge(server)
    const res = await server.inject({
      method: 'POST',
      url: '/api/session',
      payload: { did: alice.did, nonce, signature: sign(alice, sessionChallengeText(mesh.did, nonce)) },
    })
    assert.equal(res.statusCode, 200)
    const { token } = res.json() as { token: string }
    const me = await server.inject({
      method: 'GET',
      url: '/api/me',
      headers: { authorization: `Bearer ${token}` },
    })
    assert.deepEqual((me.json() as { did: string; role: string }).role, 'architect')
    const bad = await server.inject({
      method: 'GET',
      url: '/api/me',
      headers: { authorization: 'Bearer nope' },
    })
    assert.equal(bad.statusCode, 401)
    assert.equal(errorCode(bad), 'MESH_UNAUTHENTICATED')
    const none = await server.inject({ method: 'GET', url: '/api/me' })
    assert.equal(errorCode(none), 'MESH_UNAUTHENTICATED')
  })

  it('refuses a signature over the wrong nonce, then still accepts the right one', async (t) => {
    const server = await app(t)
    const nonce = await challenge(server)
    const other = await challenge(server)
    const wrong = await server.inject({
      method: 'POST',
      url: '/api/session',
      payload: { did: alice.did, nonce, signature: sign(alice, sessionChallengeText(mesh.did, other)) },
    })
    assert.equal(wrong.statusCode, 401)
    assert.equal(errorCode(wrong), 'MESH_SIGNATURE_MISMATCH')
    const otherMesh = await server.inject({
      method: 'POST',
      url: '/api/session',
      payload: { did: alice.did, nonce, signature: sign(alice, sessionChallengeText(mallory.did, nonce)) },
    })
    assert.equal(errorCode(otherMesh), 'MESH_SIGNATURE_MISMATCH')
    const right = await server.inject({
      method: 'POST',
      url: '/api/session',
      payload: { did: alice.did, nonce, signature: sign(alice, sessionChallengeText(mesh.did, nonce)) },
    })
    assert.equal(right.statusCode, 200)
  })

  it('refuses a reused nonce with MESH_REPLAY', async (t) => {
    const server = await app(t)
    const nonce = await challenge(server)
    const payload = { did: bob.did, nonce, signature: sign(bob, sessionChallengeText(mesh.did, nonce)) }
    assert.equal((await server.inject({ method: 'POST', url: '/api/session', payload })).statusCode, 200)
    const again = await server.inject({ method: 'POST', url: '/api/session', payload })
    assert.equal(again.statusCode, 409)
    assert.equal(errorCode(again), 'MESH_REPLAY')
  })

  it('refuses mallory, who signs correctly but is not a member, and unknown nonces', async (t) => {
    const server = await app(t)
    const nonce = await challenge(server)
    const res = await server.inject({
      method: 'POST',
      url: '/api/session',
      payload: { did: mallory.did, nonce, signature: sign(mallory, sessionChallengeText(mesh.did, nonce)) },
    })
    assert.equal(errorCode(res), 'MESH_FORBIDDEN')
    const made = await server.inject({
      method: 'POST',
      url: '/api/session',
      payload: {
        did: alice.did,
        nonce: 'madeup',
        signature: sign(alice, sessionChallengeText(mesh.did, 'madeup')),
      },
    })
    assert.equal(errorCode(made), 'MESH_UNAUTHENTICATED')
  })

  it('refuses malformed, unknown-field and oversized bodies with the single error shape', async (t) => {
    const server = await app(t)
    const cases = [
      { payload: '{"did":', code: 'MESH_BAD_REQUEST', status: 400 },
      {
        payload: { did: alice.did, nonce: 'a', signature: 'b', extra: 1 },
        code: 'MESH_BAD_REQUEST',
        status: 400,
      },
      { payload: { did: alice.did, nonce: 'a' }, code: 'MESH_BAD_REQUEST', status: 400 },
      { payload: { did: 42, nonce: 'a', signature: 'b' }, code: 'MESH_BAD_REQUEST', status: 400 },
      {
        payload: { did: alice.did, nonce: 'a', signature: 'x'.repeat(70_000) },
        code: 'MESH_TOO_LARGE',
        status: 413,
      },
    ]
    for (const c of cases) {
      const res = await server.inject({
        method: 'POST',
        url: '/api/session',
        headers: { 'content-type': 'application/json' },
        payload: typeof c.payload === 'string' ? c.payload : JSON.stringify(c.payload),
      })
      assert.equal(res.statusCode, c.status, JSON.stringify(c.payload).slice(0, 60))
      const body = res.json() as { error: { code: string; message: string; details: object } }
      assert.equal(body.error.code, c.code)
      assert.equal(typeof body.error.message, 'string')
      assert.equal(typeof body.error.details, 'object')
    }
    const missing = await server.inject({ method: 'GET', url: '/api/nowhere' })
    assert.equal(errorCode(missing), 'MESH_NOT_FOUND')
  })
})
