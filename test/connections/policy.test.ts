import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import {
  DEFAULT_POLICY,
  type FederationPolicy,
  type PolicyChange,
  PolicyService,
} from '../../src/connections/policy.ts'
import { policyRoutes } from '../../src/http/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { alice, bob, mallory, tempDir, tempStore } from '../fixtures/principals.ts'
import { sessionApp } from '../fixtures/session-answer.ts'

// Peers are named by the fixtures' dids; carol is a fourth mesh no list names.
const carol = new Ed25519KeyPair(Buffer.alloc(32, 4))

const policy = (overrides: Partial<FederationPolicy> = {}): FederationPolicy => ({
  ...DEFAULT_POLICY,
  allow: [],
  deny: [],
  ...overrides,
})

async function decide(service: PolicyService, did: string): Promise<string> {
  const decision = await service.evaluate(did)
  return decision.ok ? `ok autoAccept=${decision.autoAccept}` : decision.error.code
}

describe('federation policy', () => {
  it('defaults to open, no lists, no auto-accept, 50 participants, 1000 backfill events', async (t) => {
    const service = new PolicyService({ store: await tempStore(t) })
    assert.deepEqual(await service.get(), {
      mode: 'open',
      allow: [],
      deny: [],
      autoAccept: false,
      maxForeignParticipantsPerRoom: 50,
      maxBackfillEventsPerRequest: 1000,
      backfillLimit: null,
      // room lifecycle (SPEC §9)
      autoAcceptRooms: false,
    })
    assert.equal(await decide(service, bob.did), 'ok autoAccept=false')
  })

  it('decides per mode, and the deny list wins over everything', async (t) => {
    const service = new PolicyService({ store: await tempStore(t) })
    const actor = alice.did
    await service.put(policy({ mode: 'open', deny: [mallory.did], autoAccept: true }), { actor })
    assert.equal(await decide(service, bob.did), 'ok autoAccept=true')
    assert.equal(await decide(service, mallory.did), 'MESH_POLICY_REJECTED')

    await service.put(policy({ mode: 'allowlist', allow: [bob.did, mallory.did], deny: [mallory.did] }), {
      actor,
    })
    assert.equal(await decide(service, bob.did), 'ok autoAccept=false')
    assert.equal(await decide(service, carol.did), 'MESH_PEER_UNKNOWN')
    assert.equal(await decide(service, mallory.did), 'MESH_POLICY_REJECTED')

    await service.put(policy({ mode: 'closed', allow: [bob.did] }), { actor })
    assert.equal(await decide(service, bob.did), 'MESH_POLICY_REJECTED')
    const refused = await service.evaluate(carol.did)
    assert.equal(refused.ok, false)
    if (!refused.ok) assert.deepEqual(refused.error.details, { peer: carol.did, reason: 'closed' })
  })

  it('persists across a restart and reports each change with what it replaced', async (t) => {
    const path = join(await tempDir(t), 'db')
    let store = new MeshStore({ path })
    await store.open()
    t.after(() => store.close())
    const next = policy({ mode: 'allowlist', allow: [bob.did], maxBackfillEventsPerRequest: 0 })
    const change = await new PolicyService({ store }).put(next, { actor: alice.did })
    assert.deepEqual(change, { previous: policy(), policy: next, actor: alice.did })
    await store.close()
    store = new MeshStore({ path })
    await store.open()
    const reopened = new PolicyService({ store })
    assert.deepEqual(await reopened.get(), next)
    assert.equal(await decide(reopened, carol.did), 'MESH_PEER_UNKNOWN')
  })

  it('migrates a policy stored before backfillLimit existed: it reads as null (all history)', async (t) => {
    const store = await tempStore(t)
    const { backfillLimit: _, ...old } = policy({ mode: 'allowlist', allow: [bob.did] })
    await store
      .sublevel<{ policy: unknown }>('policy')
      .put('policy/1/current', { policy: old, updatedAt: 1, updatedBy: alice.did } as never)
    const service = new PolicyService({ store })
    assert.deepEqual(await service.get(), { ...old, backfillLimit: null })
    // A PATCH of another field keeps what was stored; the limit is then written too.
    const change = await service.patch({ autoAccept: true }, { actor: alice.did })
    assert.deepEqual(change.policy, { ...old, autoAccept: true, backfillLimit: null })
    assert.equal((await new PolicyService({ store }).get()).backfillLimit, null)
  })

  it('refuses invalid policies and keeps the old one', async (t) => {
    const service = new PolicyService({ store: await tempStore(t) })
    const bad: unknown[] = [
      { ...policy(), mode: 'sometimes' },
      { ...policy(), allow: ['did:web:example.com'] },
      { ...policy(), deny: ['did:key:z6Mknotakey'] },
      { ...policy(), allow: Array.from({ length: 1001 }, () => Ed25519KeyPair.generate().did) },
      { ...policy(), maxForeignParticipantsPerRoom: 100_001 },
      { ...policy(), maxBackfillEventsPerRequest: -1 },
      { ...policy(), maxBackfillEventsPerRequest: 1.5 },
      { ...policy(), autoAccept: 'yes' },
      { ...policy(), extra: 1 },
      { mode: 'open' },
    ]
    for (const value of bad) {
      await assert.rejects(service.put(value as FederationPolicy, { actor: alice.did }), {
        code: 'MESH_BAD_REQUEST',
      })
    }
    assert.deepEqual(await service.get(), policy())
  })

  it('hands out copies, so a caller cannot change the policy in place', async (t) => {
    const service = new PolicyService({ store: await tempStore(t) })
    const got = await service.get()
    got.deny.push(bob.did)
    assert.equal(await decide(service, bob.did), 'ok autoAccept=false')
  })
})

describe('GET|PUT|PATCH /api/federation/policy', () => {
  async function server(t: TestContext) {
    const { store, app, tokenOf } = await sessionApp(t, async (did) =>
      did === alice.did ? 'architect' : did === bob.did ? 'human' : undefined,
    )
    const service = new PolicyService({ store })
    const changes: PolicyChange[] = []
    await app.register(policyRoutes, {
      policy: service,
      onChange: (change) => {
        changes.push(change)
      },
    })
    return { app, changes, architect: await tokenOf(alice), human: await tokenOf(bob) }
  }

  const code = (res: { json: () => unknown }) => (res.json() as { error: { code: string } }).error.code

  it('round-trips a policy set by the architect, and audits the change', async (t) => {
    const { app, changes, architect, human } = await server(t)
    const next = policy({ mode: 'allowlist', allow: [bob.did], deny: [mallory.did], autoAccept: true })
    const put = await app.inject({
      method: 'PUT',
      url: '/api/federation/policy',
      headers: { authorization: `Bearer ${architect}` },
      payload: next,
    })
    assert.equal(put.statusCode, 200)
    assert.deepEqual(put.json(), next)
    const got = await app.inject({
      method: 'GET',
      url: '/api/federation/policy',
      headers: { authorization: `Bearer ${human}` },
    })
    assert.equal(got.statusCode, 200)
    assert.deepEqual(got.json(), next)
    assert.deepEqual(changes, [{ previous: policy(), policy: next, actor: alice.did }])
  })

  it('refuses a PUT from a human who is not the architect, and one without a session', async (t) => {
    const { app, changes, human } = await server(t)
    const forbidden = await app.inject({
      method: 'PUT',
      url: '/api/federation/policy',
      headers: { authorization: `Bearer ${human}` },
      payload: policy({ mode: 'closed' }),
    })
    assert.equal(forbidden.statusCode, 403)
    assert.equal(code(forbidden), 'MESH_FORBIDDEN')
    const anonymous = await app.inject({ method: 'PUT', url: '/api/federation/policy', payload: policy() })
    assert.equal(code(anonymous), 'MESH_UNAUTHENTICATED')
    const read = await app.inject({ method: 'GET', url: '/api/federation/policy' })
    assert.equal(code(read), 'MESH_UNAUTHENTICATED')
    assert.deepEqual(changes, [])
  })

  it('refuses unknown fields, partial objects and non-did:key entries', async (t) => {
    const { app, changes, architect } = await server(t)
    const bodies: unknown[] = [
      { ...policy(), extra: true },
      { mode: 'closed' },
      { ...policy(), maxBackfillEventsPerRequest: '10' },
      { ...policy(), deny: ['did:key:z6Mknotakey'] },
    ]
    for (const payload of bodies) {
      const res = await app.inject({
        method: 'PUT',
        url: '/api/federation/policy',
        headers: { authorization: `Bearer ${architect}` },
        payload: payload as object,
      })
      assert.equal(res.statusCode, 400, JSON.stringify(payload))
      assert.equal(code(res), 'MESH_BAD_REQUEST')
    }
    assert.deepEqual(changes, [])
  })
  // PATCH of the policy (issue 13)
  const patch = (
    app: Awaited<ReturnType<typeof server>>['app'],
    token: string | undefined,
    payload: unknown,
  ) =>
    app.inject({
      method: 'PATCH',
      url: '/api/federation/policy',
      ...(token !== undefined ? { headers: { authorization: `Bearer ${token}` } } : {}),
      payload: payload as object,
    })

  it('PATCH changes only the fields it names, and audits each change', async (t) => {
    const { app, changes, architect } = await server(t)
    const first = await patch(app, architect, { backfillLimit: 0 })
    assert.equal(first.statusCode, 200)
    assert.deepEqual(first.json(), policy({ backfillLimit: 0 }))
    const second = await patch(app, architect, { mode: 'allowlist', allow: [bob.did] })
    assert.deepEqual(second.json(), policy({ backfillLimit: 0, mode: 'allowlist', allow: [bob.did] }))
    const noop = await patch(app, architect, {})
    assert.deepEqual(noop.json(), second.json())
    const all = await patch(app, architect, { backfillLimit: null })
    assert.equal((all.json() as FederationPolicy).backfillLimit, null)
    assert.equal((all.json() as FederationPolicy).mode, 'allowlist')
    assert.deepEqual(
      changes.map((c) => c.policy.backfillLimit),
      [0, 0, 0, null],
    )
    // A PUT without backfillLimit (a client from before it) sets it back to all history.
    const { backfillLimit: _, ...old } = policy({ backfillLimit: 7 })
    const put = await app.inject({
      method: 'PUT',
      url: '/api/federation/policy',
      headers: { authorization: `Bearer ${architect}` },
      payload: old,
    })
    assert.deepEqual(put.json(), policy())
  })

  it('PATCH refuses unknown fields, bad values, other roles and no session; nothing changes', async (t) => {
    const { app, changes, architect, human } = await server(t)
    const bad: unknown[] = [
      { extra: true },
      { backfillLimit: -1 },
      { backfillLimit: 1.5 },
      { backfillLimit: '10' },
      { backfillLimit: 100_001 },
      { mode: 'sometimes' },
      { deny: ['did:key:z6Mknotakey'] },
      { allow: Array.from({ length: 1001 }, () => bob.did) },
      [],
      'backfillLimit=0',
    ]
    for (const payload of bad) {
      const res = await patch(app, architect, payload)
      assert.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 80))
      assert.equal(code(res), 'MESH_BAD_REQUEST')
    }
    const forbidden = await patch(app, human, { mode: 'closed' })
    assert.equal(code(forbidden), 'MESH_FORBIDDEN')
    assert.equal(code(await patch(app, undefined, { mode: 'closed' })), 'MESH_UNAUTHENTICATED')
    assert.deepEqual(changes, [])
  })
})
