import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AuditPage } from '../../src/audit/index.ts'
import type { TrustView } from '../../src/auth/index.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import { HttpClient } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { startNode, type TestNode } from '../connections/nodes.ts'
import { bob, mallory } from '../fixtures/principals.ts'
import { grant, rootOf } from './chain-acts.ts'

async function promotion(
  node: TestNode,
  subject: string,
  tier: number,
  reason: string,
  options: { signer?: Ed25519KeyPair; proofs?: Awaited<ReturnType<typeof rootOf>>[] } = {},
): Promise<string> {
  return invocationToken(
    options.signer ?? node.architect,
    node.node.did,
    { can: 'trust/promote', with: node.node.did, nb: { subject, tier, reason } },
    options.proofs ?? [await rootOf(node)],
  )
}

describe('trust and authority routes', () => {
  it('GET /api/auth/root-delegation and GET /api/trust show the root, the architect and the agents', async (t) => {
    const a = await startNode(t, 'alpha')
    const root = await a.api.get<{ token: string; architect: string; exp: number }>(
      '/api/auth/root-delegation',
    )
    assert.equal(root.architect, a.architect.did)
    assert.ok(root.exp > Date.now() / 1000)
    const all = await a.api.get<{ principals: TrustView[]; meshes: TrustView[] }>('/api/trust')
    const architect = all.principals.find((p) => p.did === a.architect.did)
    assert.equal(architect?.tier, 1)
    assert.equal(architect?.local, true)
    assert.deepEqual(
      all.principals.filter((p) => p.kind === 'agent').map((p) => p.tier),
      [3, 3],
      'echo and summarizer are tier 3 agents',
    )
    const unknown = await a.api.get<TrustView>(`/api/trust/${mallory.did}`)
    assert.deepEqual([unknown.tier, unknown.accepted, unknown.refused, unknown.local], [4, 0, 0, false])
    await assert.rejects(new HttpClient(a.node.httpUrl).get('/api/trust'), { code: 'MESH_UNAUTHENTICATED' })
  })

  it('PUT /api/trust/:did: only a local human’s signed trust/promote with the same tier and reason; audited', async (t) => {
    const a = await startNode(t, 'alpha')
    const subject = Ed25519KeyPair.generate().did
    const put = (body: Record<string, unknown>) => a.api.put<TrustView>(`/api/trust/${subject}`, body)

    // The body must restate what was signed.
    await assert.rejects(
      put({ tier: 2, reason: 'helpful', ucan: await promotion(a, subject, 3, 'helpful') }),
      {
        code: 'MESH_BAD_REQUEST',
      },
    )
    // Foreign humans (here: mallory, holding nothing) cannot promote.
    await assert.rejects(
      put({
        tier: 3,
        reason: 'x',
        ucan: await promotion(a, subject, 3, 'x', { signer: mallory, proofs: [] }),
      }),
      { code: 'MESH_UCAN_INVALID' },
    )
    // bob, a human member at tier 2 delegated trust/promote up to tier 3, grants 3 but not 2.
    await a.node.authority.enrollMember(bob.did, { kind: 'human', role: 'user', tier: 2 })
    const toBob = await grant(a, bob.did, { can: 'trust/promote', with: a.node.did, nb: { tier: 3 } })
    const byBob = await promotion(a, subject, 3, 'bob vouches', { signer: bob, proofs: [toBob.view] })
    const record = await put({ tier: 3, reason: 'bob vouches', ucan: byBob })
    assert.deepEqual([record.tier, record.tierChangedBy, record.tierReason], [3, bob.did, 'bob vouches'])
    await assert.rejects(
      put({
        tier: 2,
        reason: 'up',
        ucan: await promotion(a, subject, 2, 'up', { signer: bob, proofs: [toBob.view] }),
      }),
      { code: 'MESH_UCAN_INVALID' },
    )
    // The architect may; the same invocation twice is a replay.
    const ucan = await promotion(a, subject, 2, 'trusted collaborator')
    assert.equal((await put({ tier: 2, reason: 'trusted collaborator', ucan })).tier, 2)
    await assert.rejects(put({ tier: 2, reason: 'trusted collaborator', ucan }), { code: 'MESH_REPLAY' })
    const audit = await a.api.get<AuditPage>('/api/audit?action=trust.promoted&limit=50')
    assert.deepEqual(
      audit.entries.filter((e) => e.subject === subject).map((e) => [e.actor, e.details.to]),
      [
        [bob.did, 3],
        [a.architect.did, 2],
      ],
    )
    assert.equal((await a.api.get<TrustView>(`/api/trust/${subject}`)).tier, 2)
  })
})
