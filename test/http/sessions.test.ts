import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Registry } from 'prom-client'
import { SessionService } from '../../src/auth/index.ts'
import { createHttpApp, registerSessionRoutes } from '../../src/http/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'
import { challengeAnswer } from '../fixtures/session-answer.ts'

const mesh = Ed25519KeyPair.generate()

const roleOf = async (did: string) =>
  did === alice.did ? 'architect' : did === bob.did ? 'agent' : undefined

async function app(t: TestContext) {
  const store = await tempStore(t)
  const sessions = new SessionService({ store, meshDid: mesh.did, roleOf })
  const server = createHttpApp({ logger: silentLogger(), metrics: new Registry() })
  registerSessionRoutes(server, sessions)
  t.after(() => server.close())
  return server
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000) {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

async function signIn(sessions: SessionService, key: Ed25519KeyPair) {
  const { nonce } = sessions.challenge()
  return sessions.open(answer(key, nonce))
}

/**
 * `key`'s answer to challenge `nonce`: its signature over the challenge text of this mesh
 * and `nonce` (or, to forge one, of `signed.mesh` and `signed.nonce`).
 */
function answer(key: Ed25519KeyPair, nonce: string, signed: { mesh?: string; nonce?: string } = {}) {
  return challengeAnswer(key, signed.mesh ?? mesh.did, nonce, signed.nonce ?? nonce)
}

/** `POST /api/session` with `payload`. */
function openSession(server: Awaited<ReturnType<typeof app>>, payload: ReturnType<typeof answer>) {
  return server.inject({ method: 'POST', url: '/api/session', payload })
}

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
    const res = await openSession(server, answer(alice, nonce))
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
    const wrong = await openSession(server, answer(alice, nonce, { nonce: other }))
    assert.equal(wrong.statusCode, 401)
    assert.equal(errorCode(wrong), 'MESH_SIGNATURE_MISMATCH')
    const otherMesh = await openSession(server, answer(alice, nonce, { mesh: mallory.did }))
    assert.equal(errorCode(otherMesh), 'MESH_SIGNATURE_MISMATCH')
    const right = await openSession(server, answer(alice, nonce))
    assert.equal(right.statusCode, 200)
  })

  it('refuses a reused nonce with MESH_REPLAY', async (t) => {
    const server = await app(t)
    const nonce = await challenge(server)
    const payload = answer(bob, nonce)
    assert.equal((await openSession(server, payload)).statusCode, 200)
    const again = await openSession(server, payload)
    assert.equal(again.statusCode, 409)
    assert.equal(errorCode(again), 'MESH_REPLAY')
  })

  it('refuses mallory, who signs correctly but is not a member, and unknown nonces', async (t) => {
    const server = await app(t)
    const nonce = await challenge(server)
    const res = await openSession(server, answer(mallory, nonce))
    assert.equal(errorCode(res), 'MESH_FORBIDDEN')
    const made = await openSession(server, answer(alice, 'madeup'))
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

  it("10 100 challenges from an attacker do not evict a real user's outstanding nonce", async (t) => {
    const server = await app(t)
    const nonce = await challenge(server)
    for (let i = 0; i < 10_100; i++) {
      const res = await server.inject({
        method: 'GET',
        url: '/api/session/challenge',
        remoteAddress: `10.0.${i >> 8}.${i & 255}`,
      })
      assert.equal(res.statusCode, 200)
    }
    const res = await openSession(server, answer(alice, nonce))
    assert.equal(res.statusCode, 200, res.body)
  })

  it('refuses a forged or expired nonce: a nonce is only good from this node, until its expiry', async (t) => {
    const store = await tempStore(t)
    const sessions = new SessionService({ store, meshDid: mesh.did, roleOf, challengeTtlMs: 1 })
    const other = new SessionService({ store, meshDid: mesh.did, roleOf })
    const foreign = other.challenge().nonce
    await assert.rejects(sessions.open(answer(alice, foreign)), { name: 'UnauthenticatedError' })
    const { nonce, expiresAt } = sessions.challenge()
    await until(() => Date.now() > Date.parse(expiresAt), 'the challenge to expire')
    await assert.rejects(sessions.open(answer(alice, nonce)), { name: 'UnauthenticatedError' })
  })

  it('DELETE /api/session logs out: the token fails at once', async (t) => {
    const server = await app(t)
    const nonce = await challenge(server)
    const { token } = (await openSession(server, answer(alice, nonce))).json() as { token: string }
    const auth = { authorization: `Bearer ${token}` }
    assert.equal((await server.inject({ method: 'GET', url: '/api/me', headers: auth })).statusCode, 200)
    const out = await server.inject({ method: 'DELETE', url: '/api/session', headers: auth })
    assert.equal(out.statusCode, 204)
    const after = await server.inject({ method: 'GET', url: '/api/me', headers: auth })
    assert.equal(after.statusCode, 401)
    assert.equal(errorCode(after), 'MESH_UNAUTHENTICATED')
    const again = await server.inject({ method: 'DELETE', url: '/api/session', headers: auth })
    assert.equal(errorCode(again), 'MESH_UNAUTHENTICATED')
  })

  it('purges expired sessions from the store at start and periodically', async (t) => {
    const store = await tempStore(t)
    const stored = () => store.sublevel('sessions').keys().all()
    const short = new SessionService({ store, meshDid: mesh.did, roleOf, sessionTtlMs: 1 })
    const long = new SessionService({ store, meshDid: mesh.did, roleOf })
    const gone = await signIn(short, alice)
    const kept = await signIn(long, bob)
    await until(() => Date.now() > Date.parse(gone.expiresAt), 'the session to expire')
    assert.equal((await stored()).length, 2)
    // A restart: the expired session is gone before anything is served.
    const restarted = new SessionService({ store, meshDid: mesh.did, roleOf, purgeIntervalMs: 10 })
    await restarted.start()
    t.after(() => restarted.stop())
    assert.equal((await stored()).length, 1)
    assert.equal((await restarted.authenticate(kept.token)).did, bob.did)
    // While running: a session that expires later is purged without another start.
    const later = await signIn(short, alice)
    await until(async () => (await stored()).length === 1, 'the periodic purge')
    await assert.rejects(restarted.authenticate(later.token), { name: 'UnauthenticatedError' })
  })
})
