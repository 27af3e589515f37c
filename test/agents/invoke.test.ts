import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type * as API from '@ucanto/interface'
import type { InvokeResult } from '../../src/agents/index.ts'
import type { AuditPage } from '../../src/audit/index.ts'
import { agentResourceOf, encodeToken, issueDelegation } from '../../src/auth/authority/index.ts'
import type { TrustView } from '../../src/auth/index.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import { HttpClient } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair, MESH_KEY_FILE, readKeyFile } from '../../src/identity/index.ts'
import type { MeshManifest } from '../../src/manifest/index.ts'
import { grant, rootOf } from '../auth/chain-acts.ts'
import { startNode, type TestNode } from '../connections/nodes.ts'
import { waitFor } from '../p2p/nodes.ts'

function invoke(
  node: TestNode,
  signer: Ed25519KeyPair,
  agent: string,
  ability: string,
  input: unknown,
  proofs: API.Delegation[],
): Promise<string> {
  return invocationToken(
    signer,
    node.node.did,
    { can: 'agent/invoke', with: agentResourceOf(node.node.did, agent), nb: { ability, input } },
    proofs,
  )
}

async function promote(node: TestNode, subject: string, tier: number, reason: string): Promise<TrustView> {
  const ucan = await invocationToken(
    node.architect,
    node.node.did,
    { can: 'trust/promote', with: node.node.did, nb: { subject, tier, reason } },
    [await rootOf(node)],
  )
  return node.api.put<TrustView>(`/api/trust/${subject}`, { tier, reason, ucan })
}

type Refusal = { code: string; details: { proof?: string; reason?: string } }
const refused = (code: string, proof?: string) => (err: Refusal) => {
  assert.equal(err.code, code, JSON.stringify(err))
  if (proof !== undefined) assert.equal(err.details.proof, proof)
  return true
}

describe('capability sharing: POST /api/invoke', () => {
  it('the manifest lists the agents (A2A cards) and agent/invoke', async (t) => {
    const a = await startNode(t, 'alpha')
    const manifest = await new HttpClient(a.node.httpUrl).get<MeshManifest>('/.well-known/mesh-manifest.json')
    assert.ok(manifest.capabilities.includes('agent/invoke'))
    assert.deepEqual(
      manifest.agents.map((c) => [c.name, c.resource, c.skills.map((s) => s.id)]),
      [
        ['echo', agentResourceOf(a.node.did, 'echo'), ['echo']],
        ['summarizer', agentResourceOf(a.node.did, 'summarizer'), ['room-summary']],
      ],
    )
    assert.equal(manifest.agents[0]?.url, `${a.node.httpUrl}/api/invoke`)
  })

  it('a foreign agent: refused without a chain, without a human, beyond its tier; accepted once promoted; demoted after violations', async (t) => {
    const a = await startNode(t, 'alpha', { authority: { violationThreshold: 3 } })
    const dave = Ed25519KeyPair.generate()
    const open = new HttpClient(a.node.httpUrl)
    const post = (ucan: string) => open.post<InvokeResult>('/api/invoke', { ucan })

    // No chain at all.
    await assert.rejects(
      post(await invoke(a, dave, 'echo', 'echo', 'hi', [])),
      refused('MESH_UCAN_INVALID', 'ucan'),
    )
    // The architect's delegation, but dave is tier 4 (participation only).
    const toDave = await grant(a, dave.did, {
      can: 'agent/invoke',
      with: agentResourceOf(a.node.did, 'echo'),
      nb: { ability: 'echo' },
    })
    await assert.rejects(
      post(await invoke(a, dave, 'echo', 'echo', 'hi', [toDave.view])),
      refused('MESH_TIER_FORBIDDEN', 'ucan'),
    )
    assert.equal((await promote(a, dave.did, 3, 'runs our CI')).tier, 3)

    const ucan = await invoke(a, dave, 'echo', 'echo', { text: 'hello' }, [toDave.view])
    const res = await post(ucan)
    assert.deepEqual(res.result && (res.result as { echo: unknown }).echo, { text: 'hello' })
    assert.deepEqual(
      [res.agent, res.ability, res.invoker, res.tier, res.human],
      ['echo', 'echo', dave.did, 3, a.architect.did],
    )
    const audit = await a.api.get<AuditPage>('/api/audit?action=agent.invoked')
    assert.equal(audit.entries.at(-1)?.actor, dave.did)

    // A replay is refused but charged to nobody: anyone who saw the invocation can repost it.
    await assert.rejects(post(ucan), refused('MESH_REPLAY'))
    // Violations dave signed: a chain from the mesh key alone (no human), twice, a skill not delegated.
    const meshKey = await readKeyFile(join(a.dataDir, MESH_KEY_FILE))
    const autonomous = await issueDelegation({
      issuer: meshKey,
      audience: dave.did,
      capabilities: [{ can: 'agent/invoke', with: agentResourceOf(a.node.did, 'echo') }],
      expiration: Math.floor(Date.now() / 1000) + 600,
    })
    assert.ok(await encodeToken(autonomous))
    await assert.rejects(
      post(await invoke(a, dave, 'echo', 'echo', 'x', [autonomous])),
      refused('MESH_NOT_HUMAN_SIGNED', 'ucan'),
    )
    await assert.rejects(
      post(await invoke(a, dave, 'echo', 'echo', 'y', [autonomous])),
      refused('MESH_NOT_HUMAN_SIGNED', 'ucan'),
    )
    // Not an agent of this mesh / not a skill: refused before any chain is checked.
    await assert.rejects(
      post(await invoke(a, dave, 'nobody', 'echo', 'x', [toDave.view])),
      refused('MESH_NOT_FOUND'),
    )
    await assert.rejects(
      post(await invoke(a, dave, 'summarizer', 'room-summary', { room: 'r' }, [toDave.view])),
      refused('MESH_UCAN_INVALID', 'ucan'),
    )
    const demoted = await waitFor(async () => {
      const r = await a.api.get<TrustView>(`/api/trust/${dave.did}`)
      return r.tier === 4 ? r : undefined
    }, 'dave demoted')
    assert.equal(demoted.tierReason, 'violations')
    assert.ok(demoted.refused >= 3 && demoted.accepted >= 0)
    await assert.rejects(
      post(await invoke(a, dave, 'echo', 'echo', 'again', [toDave.view])),
      refused('MESH_TIER_FORBIDDEN'),
    )
    const rows = await a.api.get<AuditPage>('/api/audit?action=trust.demoted')
    assert.ok(rows.entries.some((e) => e.subject === dave.did && e.details.automatic === true))
  })

  it('room-summary summarises a room the summarizer was added to, and no other', async (t) => {
    const a = await startNode(t, 'alpha')
    const room = await a.api.post<{ id: string }>('/api/rooms', { name: 'planning' })
    const other = await a.api.post<{ id: string }>('/api/rooms', { name: 'private' })
    for (const body of [
      'shipping the release friday',
      'release notes drafted',
      'friday works for the release',
    ]) {
      await a.api.post(`/api/rooms/${room.id}/messages`, { body })
    }
    const agent = a.node.agents.didOf('summarizer') as string
    await a.node.rooms.join(room.id, agent)
    const root = await rootOf(a)
    const res = await new HttpClient(a.node.httpUrl).post<InvokeResult>('/api/invoke', {
      ucan: await invoke(a, a.architect, 'summarizer', 'room-summary', { room: room.id, last: 2 }, [root]),
    })
    const summary = res.result as { messages: number; keywords: string[]; last: { body: string } }
    assert.equal(summary.messages, 2)
    assert.equal(summary.last.body, 'friday works for the release')
    assert.ok(summary.keywords.includes('release'))
    await assert.rejects(
      new HttpClient(a.node.httpUrl).post('/api/invoke', {
        ucan: await invoke(a, a.architect, 'summarizer', 'room-summary', { room: other.id }, [root]),
      }),
      (err: Refusal) => err.code === 'MESH_FORBIDDEN' || err.code === 'MESH_NOT_FOUND',
    )
  })
})
