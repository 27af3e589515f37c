import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  ApiError,
  AUDIT_MAX_ACTION_LENGTH,
  AUDIT_PROBLEM_KINDS,
  checkpointSchema,
  createApiClient,
  MEMBER_ROLES,
  MESH_LIST_API_LIMITS,
  MESH_LIST_SORTS,
  MESH_STATUSES,
  PRESENTATION,
  policySchema,
  ROOM_API_LIMITS,
  ROOM_VISIBILITIES,
  routes,
} from '../../src/api/index.ts'
import { AUDIT_PROBLEM_KINDS as LOG_PROBLEM_KINDS } from '../../src/audit/audit-log.ts'
import { AUDIT_LIMITS } from '../../src/audit/audit-row.ts'
import { checkpointSchema as auditCheckpointSchema } from '../../src/audit/checkpoint.ts'
import { TOKEN_LIMITS } from '../../src/auth/authority/index.ts'
import { policySchema as storedPolicySchema } from '../../src/connections/policy.ts'
import { HEARTBEAT_LIMITS, HEARTBEAT_STATUSES } from '../../src/registry/heartbeat.ts'
import {
  MESH_LIST_SORTS as LIST_SORTS,
  MESH_STATUSES as LIST_STATUSES,
  MESH_LIST_LIMITS,
} from '../../src/registry/mesh-list.ts'
import { MEMBER_ROLES as ENTRY_ROLES, ROOM_LIMITS } from '../../src/rooms/room-entries.ts'
import { ROOM_VISIBILITIES as MANAGER_VISIBILITIES } from '../../src/rooms/room-manager.ts'
import { startNode } from '../connections/nodes.ts'
import { mallory } from '../fixtures/principals.ts'

describe('the typed API client against a real node', () => {
  it('signs in, reads through the contract, and surfaces a refusal as ApiError with its code', async (t) => {
    const a = await startNode(t, 'alpha')
    const client = createApiClient({ baseUrl: a.node.httpUrl })

    // Without a session: the one error shape, as an ApiError.
    const refused = await client.call('me').then(
      () => assert.fail('GET /api/me without a token must be refused'),
      (err: unknown) => err,
    )
    assert.ok(refused instanceof ApiError)
    assert.equal(refused.code, 'MESH_UNAUTHENTICATED')
    assert.equal(refused.status, 401)

    const session = await client.signIn({ did: a.architect.did, sign: (bytes) => a.architect.sign(bytes) })
    assert.equal(client.token, session.token)
    assert.equal(client.meshDid, a.node.did)

    const me = await client.call('me')
    assert.deepEqual([me.did, me.role], [a.architect.did, 'architect'])

    const created = await client.call('createRoom', { body: { name: 'general', topic: 'all things' } })
    const room = await client.call('getRoom', { params: { id: created.id } })
    assert.deepEqual([room.name, room.topic, room.role, room.members], ['general', 'all things', 'owner', 1])
    const posted = await client.call('postMessage', { params: { id: created.id }, body: { body: 'hello' } })
    const page = await client.call('listMessages', { params: { id: created.id }, query: { limit: '10' } })
    assert.deepEqual(
      page.messages.map((m) => [m.id, m.body, m.authorDid]),
      [[posted.id, 'hello', a.architect.did]],
    )

    // A schema refusal (unknown field) and a domain refusal (no such room), both with details.
    await assert.rejects(
      client.call('createRoom', { body: { name: 'x', colour: 'red' } as never }),
      (err: unknown) => err instanceof ApiError && err.code === 'MESH_BAD_REQUEST' && err.status === 400,
    )
    await assert.rejects(
      client.call('getTrust', { params: { did: 'not-a-did' } }),
      (err: unknown) => err instanceof ApiError && err.code === 'MESH_BAD_REQUEST',
    )
    const unknown = await client.call('getTrust', {
      params: { did: mallory.did },
      query: { scope: 'principal' },
    })
    assert.deepEqual([unknown.tier, unknown.local], [4, false])

    // Logout: the token fails at once.
    await client.signOut()
    const stale = createApiClient({ baseUrl: a.node.httpUrl, token: session.token })
    await assert.rejects(stale.call('me'), { name: 'ApiError', code: 'MESH_UNAUTHENTICATED', status: 401 })
  })

  it('reports a node it cannot reach as MESH_UNAVAILABLE with status 0', async () => {
    const client = createApiClient({
      baseUrl: 'http://127.0.0.1:9',
      fetch: async () => {
        throw new TypeError('fetch failed')
      },
    })
    await assert.rejects(client.call('health'), { name: 'ApiError', code: 'MESH_UNAVAILABLE', status: 0 })
  })
})

describe('the contract matches the modules that enforce the same rules', () => {
  it('names every route once, by method and path', () => {
    const keys = Object.values(routes).map((r) => `${r.method} ${r.path}`)
    assert.equal(new Set(keys).size, keys.length)
  })

  it('holds the same limits and enumerations as the domain modules', () => {
    // The domain modules take these from the contract: one definition, not a copy.
    assert.equal(storedPolicySchema, policySchema)
    assert.equal(auditCheckpointSchema, checkpointSchema)
    assert.equal(AUDIT_MAX_ACTION_LENGTH, AUDIT_LIMITS.maxActionLength)
    assert.equal(LOG_PROBLEM_KINDS, AUDIT_PROBLEM_KINDS)
    assert.equal(PRESENTATION.maxLength, TOKEN_LIMITS.maxEncodedLength)
    for (const [key, value] of Object.entries(ROOM_API_LIMITS)) {
      assert.equal(value, ROOM_LIMITS[key as keyof typeof ROOM_LIMITS], key)
    }
    assert.deepEqual(ROOM_VISIBILITIES, MANAGER_VISIBILITIES)
    assert.deepEqual(MEMBER_ROLES, ENTRY_ROLES)
    assert.equal(LIST_STATUSES, MESH_STATUSES)
    assert.equal(HEARTBEAT_STATUSES, MESH_STATUSES)
    assert.equal(LIST_SORTS, MESH_LIST_SORTS)
    assert.equal(MESH_LIST_API_LIMITS.maxQueryLength, MESH_LIST_LIMITS.maxQueryLength)
    assert.equal(MESH_LIST_API_LIMITS.maxCursorLength, MESH_LIST_LIMITS.maxCursorLength)
    assert.equal(MESH_LIST_API_LIMITS.maxMultiaddrs, HEARTBEAT_LIMITS.maxMultiaddrs)
    assert.equal(MESH_LIST_API_LIMITS.maxProtocolVersions, HEARTBEAT_LIMITS.maxProtocolVersions)
  })
})

// Checked by tsc, never run: the client's input and output follow the route's schemas.
async function typedCalls(client: ReturnType<typeof createApiClient>): Promise<void> {
  // @ts-expect-error getRoom needs its `id` param
  await client.call('getRoom', { params: {} })
  // @ts-expect-error a room's body has no `colour`
  await client.call('createRoom', { body: { name: 'x', colour: 'red' } })
  const peers = await client.call('listPeers')
  // @ts-expect-error a peer's state is one of the server's states, not any string
  const state: 'bogus' = peers[0]?.state ?? 'bogus'
  void state
}
void typedCalls
