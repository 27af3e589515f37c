/**
 * Names, not dids (issue 14): the trust views name what this mesh knows — itself, its
 * own principals (`@localId`), a peer mesh (its name), a foreign principal met in a
 * shared room (`@localId:mesh`) — and leave a stranger unnamed. Two real nodes.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { TrustView } from '../../src/auth/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { twoNodesSharing, until } from '../rooms/helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }

describe('names for identities', () => {
  it('GET /api/trust names this mesh’s principals, a peer mesh and a foreign principal met in a room; a stranger has none', async (t) => {
    const { a, b, id } = await twoNodesSharing(t, { rooms: ROOMS })
    const posted = await b.api.post<{ id: string }>(`/api/rooms/${id}/messages`, { body: 'hello from beta' })
    await until(
      async () =>
        (await a.api.get<{ messages: Array<{ id: string }> }>(`/api/rooms/${id}/messages`)).messages.some(
          (m) => m.id === posted.id,
        ),
      'beta’s post at alpha',
    )

    const named = async (did: string, scope = 'principal') =>
      (await a.api.get<TrustView>(`/api/trust/${did}?scope=${scope}`)).name
    const architect = (await a.api.get<{ members: Array<{ did: string; localId: string }> }>('/api/members'))
      .members[0]
    assert.equal(await named(a.architect.did), `@${architect?.localId}`)
    assert.equal(
      await named(b.architect.did),
      `@${(await b.api.get<{ members: Array<{ localId: string }> }>('/api/members')).members[0]?.localId}:beta`,
    )
    assert.equal(await named(b.node.did, 'mesh'), 'beta')
    assert.equal(await named(a.node.did, 'mesh'), 'alpha')
    assert.equal(await named(Ed25519KeyPair.generate().did), undefined, 'a stranger has no name')

    // The list names every record it can: the agents, the architect, the peer mesh.
    const all = await a.api.get<{ principals: TrustView[]; meshes: TrustView[] }>('/api/trust')
    for (const agent of all.principals.filter((p) => p.kind === 'agent'))
      assert.match(agent.name ?? '', /^@\w+/)
    assert.equal(all.principals.find((p) => p.did === a.architect.did)?.name, `@${architect?.localId}`)
    await until(async () => {
      const meshes = (await a.api.get<{ meshes: TrustView[] }>('/api/trust')).meshes
      return meshes.find((m) => m.did === b.node.did)?.name === 'beta'
    }, 'beta named in the peer meshes’ trust')
  })
})
