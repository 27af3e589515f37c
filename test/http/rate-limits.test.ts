import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { Registry } from 'prom-client'
import type { AgentService } from '../../src/agents/agent-service.ts'
import { SessionService } from '../../src/auth/index.ts'
import { MeshError } from '../../src/errors.ts'
import { createHttpApp, type HttpAppInit, invokeRoutes, registerSessionRoutes } from '../../src/http/index.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'
import { challengeAnswer } from '../fixtures/session-answer.ts'

const MESH = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
const ATTACKER = '203.0.113.7'
const HONEST = '198.51.100.2'

async function app(t: TestContext, rateLimits: HttpAppInit['rateLimits']) {
  const store = await tempStore(t)
  const sessions = new SessionService({
    store,
    meshDid: MESH,
    roleOf: async (did) => (did === alice.did ? 'architect' : did === bob.did ? 'human' : undefined),
  })
  const metrics = new Registry()
  const server = createHttpApp({ logger: silentLogger(), metrics, rateLimits })
  registerSessionRoutes(server, sessions)
  // Every invocation refused, as a forged one would be: the refusal is not what is measured.
  const agents = {
    invoke: async () => {
      throw new MeshError('MESH_UCAN_INVALID', 'no such chain')
    },
  } as unknown as AgentService
  await server.register(invokeRoutes, { invocations: agents })
  server.get('/api/health', async () => ({ status: 'ok' }))
  server.post('/api/limited', { config: { rateLimit: { max: 2, timeWindow: 60_000 } } }, async () => ({
    ok: true,
  }))
  t.after(() => server.close())
  const token = async (key: Ed25519KeyPair, remoteAddress = HONEST) => {
    const { nonce } = (
      await server.inject({ method: 'GET', url: '/api/session/challenge', remoteAddress })
    ).json() as { nonce: string }
    const res = await server.inject({
      method: 'POST',
      url: '/api/session',
      remoteAddress,
      payload: challengeAnswer(key, MESH, nonce),
    })
    assert.equal(res.statusCode, 200, res.body)
    return (res.json() as { token: string }).token
  }
  return { server, metrics, token }
}

function assertRateLimited(res: LightMyRequestResponse): void {
  assert.equal(res.statusCode, 429, res.body)
  const body = res.json() as { error: { code: string; message: string; details: object } }
  assert.equal(body.error.code, 'MESH_RATE_LIMITED')
  assert.equal(typeof body.error.message, 'string')
  assert.ok(Number(res.headers['retry-after']) >= 1, `Retry-After: ${res.headers['retry-after']}`)
}

/** Sends `n` requests; returns the statuses, in order. */
async function hammer(
  server: Awaited<ReturnType<typeof app>>['server'],
  n: number,
  request: InjectOptions,
): Promise<LightMyRequestResponse[]> {
  const out: LightMyRequestResponse[] = []
  for (let i = 0; i < n; i++) out.push(await server.inject(request))
  return out
}

const badSignIn = {
  did: mallory.did,
  nonce: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  signature: 'A'.repeat(86),
}

describe('HTTP rate limits: per-source token buckets', () => {
  it('a flood of bad POST /api/session gets 429 MESH_RATE_LIMITED; another source still signs in', async (t) => {
    const { server, metrics, token } = await app(t, { signIn: { max: 5, windowMs: 60_000 } })
    const flood = await hammer(server, 20, {
      method: 'POST',
      url: '/api/session',
      remoteAddress: ATTACKER,
      payload: badSignIn,
    })
    assert.deepEqual(
      flood.slice(0, 5).map((r) => r.statusCode),
      [401, 401, 401, 401, 401],
    )
    for (const res of flood.slice(5)) assertRateLimited(res)
    // The honest source is untouched: a whole sign-in (two requests) and a session.
    const t1 = await token(alice)
    const me = await server.inject({
      method: 'GET',
      url: '/api/me',
      headers: { authorization: `Bearer ${t1}` },
    })
    assert.equal(me.statusCode, 200)
    assert.match(await metrics.metrics(), /mesh_http_rate_limited_total\{class="signIn"\} 15/)
  })

  it('a flood of GET /api/session/challenge is limited per source IP', async (t) => {
    const { server } = await app(t, { signIn: { max: 3, windowMs: 60_000 } })
    const flood = await hammer(server, 10, {
      method: 'GET',
      url: '/api/session/challenge',
      remoteAddress: ATTACKER,
    })
    assert.deepEqual(
      flood.slice(0, 3).map((r) => r.statusCode),
      [200, 200, 200],
    )
    for (const res of flood.slice(3)) assertRateLimited(res)
    const honest = await server.inject({
      method: 'GET',
      url: '/api/session/challenge',
      remoteAddress: HONEST,
    })
    assert.equal(honest.statusCode, 200)
    // IPv6 sources are keyed by their /64: rotating the interface id does not buy a new bucket.
    const v6 = await hammer(server, 4, {
      method: 'GET',
      url: '/api/session/challenge',
      remoteAddress: '2001:db8:1:2::1',
    })
    assertRateLimited(v6[3] as LightMyRequestResponse)
    const sameNet = await server.inject({
      method: 'GET',
      url: '/api/session/challenge',
      remoteAddress: '2001:db8:1:2:ffff::9',
    })
    assertRateLimited(sameNet)
  })

  it('a flood of the unauthenticated POST /api/invoke is limited per source IP', async (t) => {
    const { server } = await app(t, { invoke: { max: 4, windowMs: 60_000 } })
    const flood = await hammer(server, 12, {
      method: 'POST',
      url: '/api/invoke',
      remoteAddress: ATTACKER,
      payload: { ucan: 'mAYIEAmRlYWRiZWVm' },
    })
    assert.deepEqual(
      flood.slice(0, 4).map((r) => r.json().error.code),
      ['MESH_UCAN_INVALID', 'MESH_UCAN_INVALID', 'MESH_UCAN_INVALID', 'MESH_UCAN_INVALID'],
    )
    for (const res of flood.slice(4)) assertRateLimited(res)
    const honest = await server.inject({
      method: 'POST',
      url: '/api/invoke',
      remoteAddress: HONEST,
      payload: { ucan: 'mAYIEAmRlYWRiZWVm' },
    })
    assert.equal(honest.json().error.code, 'MESH_UCAN_INVALID')
  })

  it('authenticated routes are charged per principal; refused tokens per source IP', async (t) => {
    const { server, token } = await app(t, {
      session: { max: 3, windowMs: 60_000 },
      anonymous: { max: 4, windowMs: 60_000 },
    })
    const ta = await token(alice)
    const tb = await token(bob)
    // alice and bob share one IP, yet alice's flood does not touch bob.
    const flood = await hammer(server, 6, {
      method: 'GET',
      url: '/api/me',
      headers: { authorization: `Bearer ${ta}` },
    })
    assert.deepEqual(
      flood.slice(0, 3).map((r) => r.statusCode),
      [200, 200, 200],
    )
    for (const res of flood.slice(3)) assertRateLimited(res)
    const asBob = await server.inject({
      method: 'GET',
      url: '/api/me',
      headers: { authorization: `Bearer ${tb}` },
    })
    assert.equal(asBob.statusCode, 200)
    // Guessed tokens cost the guessing source, whose bucket then answers 429.
    const guesses = await hammer(server, 8, {
      method: 'GET',
      url: '/api/me',
      remoteAddress: ATTACKER,
      headers: { authorization: 'Bearer guessed' },
    })
    assert.deepEqual(
      guesses.slice(0, 4).map((r) => r.statusCode),
      [401, 401, 401, 401],
    )
    for (const res of guesses.slice(4)) assertRateLimited(res)
    // …and the same source's anonymous routes with it, but nobody else's.
    assertRateLimited(await server.inject({ method: 'GET', url: '/api/health', remoteAddress: ATTACKER }))
    assertRateLimited(await server.inject({ method: 'GET', url: '/no/such/route', remoteAddress: ATTACKER }))
    const health = await server.inject({ method: 'GET', url: '/api/health', remoteAddress: HONEST })
    assert.equal(health.statusCode, 200)
    const missing = await server.inject({ method: 'GET', url: '/no/such/route', remoteAddress: HONEST })
    assert.equal(missing.json().error.code, 'MESH_NOT_FOUND')
  })

  it("a route's own config.rateLimit answers with the same error shape", async (t) => {
    const { server } = await app(t, {})
    const res = await hammer(server, 3, {
      method: 'POST',
      url: '/api/limited',
      remoteAddress: ATTACKER,
      payload: {},
    })
    assert.deepEqual(
      res.slice(0, 2).map((r) => r.statusCode),
      [200, 200],
    )
    assertRateLimited(res[2] as LightMyRequestResponse)
    const other = await server.inject({
      method: 'POST',
      url: '/api/limited',
      remoteAddress: HONEST,
      payload: {},
    })
    assert.equal(other.statusCode, 200)
  })

  it('rateLimits: false turns every limit off', async (t) => {
    const { server } = await app(t, false)
    const flood = await hammer(server, 150, {
      method: 'POST',
      url: '/api/session',
      remoteAddress: ATTACKER,
      payload: badSignIn,
    })
    assert.ok(flood.every((r) => r.statusCode === 401))
  })
})
