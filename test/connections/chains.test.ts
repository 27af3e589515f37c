import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import type { AuditPage } from '../../src/audit/index.ts'
import {
  encodeToken,
  issueDelegation,
  issueInvocation,
  issueMembershipCredential,
} from '../../src/auth/authority/index.ts'
import type { TrustView } from '../../src/auth/index.ts'
import { createEnvelope, encodeEnvelope, MESH_CONNECT_PROTOCOL } from '../../src/connections/index.ts'
import { Ed25519KeyPair, MESH_KEY_FILE, readKeyFile } from '../../src/identity/index.ts'
import { chainAct, rootOf } from '../auth/chain-acts.ts'
import { bob, mallory } from '../fixtures/principals.ts'
import { startHost, waitFor } from '../p2p/nodes.ts'
import { formerInterimAct, sendRaw, startNode, statusAt } from './nodes.ts'

const FAST_TRUST = { authority: { interactionFlushMs: 50 } }

type Reply = Awaited<ReturnType<typeof sendRaw>>

function refusedWith(reply: Reply, code: string, reason?: string): void {
  assert.equal(reply.type, 'connect.error', JSON.stringify(reply.body))
  assert.equal(reply.body.code, code, JSON.stringify(reply.body))
  if (reason !== undefined) assert.equal((reply.body.details as { reason?: string }).reason, reason)
}

/** A hostile (or merely foreign) mesh outside any node: its key, a libp2p host, its architect mallory. */
async function foreignMesh(t: TestContext) {
  const key = Ed25519KeyPair.generate()
  const { libp2p } = await startHost(t, { key })
  const exp = Math.floor(Date.now() / 1000) + 3600
  const root = await issueDelegation({
    issuer: key,
    audience: mallory.did,
    capabilities: [{ can: '*', with: key.did }],
    expiration: exp,
  })
  return { key, libp2p, root }
}

describe('connections with UCAN chains', () => {
  it('request, accept and disconnect as chains; the peer verifies the forwarded chain; reputation counts', async (t) => {
    const a = await startNode(t, 'alpha', FAST_TRUST)
    const b = await startNode(t, 'beta', FAST_TRUST)
    const ucan = await chainAct(a, 'mesh/connect', b.node.did)
    assert.ok(!ucan.startsWith('eyJ'), 'a CAR token, not an interim act')
    const { id } = await a.api.post<{ id: string }>('/api/connections', { target: b.addr(), ucan })
    await waitFor(async () => (await statusAt(b, id))?.status === 'pending', 'request at beta')
    await b.api.post(`/api/connections/${id}/accept`, { ucan: await chainAct(b, 'connection/accept', id) })
    await waitFor(async () => (await statusAt(a, id))?.status === 'accepted', 'accepted at alpha')

    // Who decided, on both sides: the humans in the chains.
    const atA = await a.api.get<AuditPage>('/api/audit?action=federation.connection&limit=50')
    assert.ok(
      atA.entries.some((e) => e.action === 'federation.connection.accepted' && e.actor === b.architect.did),
    )
    const atB = await b.api.get<AuditPage>('/api/audit?action=federation.connection&limit=50')
    assert.ok(
      atB.entries.some(
        (e) => e.action === 'federation.connection.requested' && e.details.requestedBy === a.architect.did,
      ),
    )
    // The same chain cannot be used twice.
    await assert.rejects(a.api.post('/api/connections', { target: b.addr(), ucan }), { code: 'MESH_REPLAY' })

    // beta's reputation of alpha (the mesh and its architect) counts the accepted request.
    const trust = await waitFor(async () => {
      const all = await b.api.get<{ principals: TrustView[]; meshes: TrustView[] }>('/api/trust')
      const mesh = all.meshes.find((m) => m.did === a.node.did)
      return mesh !== undefined && mesh.accepted >= 1 ? all : undefined
    }, 'beta counts alpha')
    const human = trust.principals.find((p) => p.did === a.architect.did)
    assert.equal(human?.tier, 4, 'a foreign architect is tier 4 here')
    assert.equal(human?.mesh, a.node.did)

    await a.api.post(`/api/connections/${id}/disconnect`, {
      ucan: await chainAct(a, 'connection/disconnect', id),
    })
    await waitFor(async () => (await statusAt(b, id))?.status === 'disconnected', 'disconnected at beta')
  })

  it('locally: refused without a chain from the root, for another subject, without a human, and in the former interim form', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    const post = (ucan: string) => a.api.post('/api/connections', { target: b.addr(), ucan })
    // bob holds no delegation: the root delegation is the architect's.
    await assert.rejects(
      post(await chainAct(a, 'mesh/connect', b.node.did, { signer: bob, proofs: [await rootOf(a)] })),
      (err: { code: string; details: { proof: string; reason: string } }) =>
        err.code === 'MESH_UCAN_INVALID' &&
        err.details.proof === 'ucan' &&
        err.details.reason === 'alignment',
    )
    // The act names another peer.
    await assert.rejects(post(await chainAct(a, 'mesh/connect', mallory.did)), { code: 'MESH_UCAN_INVALID' })
    // The mesh key acting alone: no human signed.
    const meshKey = await readKeyFile(join(a.dataDir, MESH_KEY_FILE))
    await assert.rejects(
      post(await chainAct(a, 'mesh/connect', b.node.did, { signer: meshKey, proofs: [] })),
      {
        code: 'MESH_NOT_HUMAN_SIGNED',
      },
    )
    assert.deepEqual(await a.connections(), [])

    // Every act is a chain: the former interim act form is refused.
    await assert.rejects(post(formerInterimAct(a, 'mesh/connect', b.node.did)), { code: 'MESH_UCAN_INVALID' })
    await post(await chainAct(a, 'mesh/connect', b.node.did))
    assert.equal((await a.connections()).length, 1)
  })

  it('a key rotation is a chain act; the authority follows the new key (root delegation, architect credential)', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    const before = await a.api.get<{ cid: string; mesh: string }>('/api/auth/root-delegation')
    const old = a.node.did
    await a.api.post('/api/keys/rotate', { ucan: await chainAct(a, 'mesh/rotate-key') })
    assert.notEqual(a.node.did, old)
    const after = await a.api.get<{ cid: string; mesh: string }>('/api/auth/root-delegation')
    assert.notEqual(after.cid, before.cid)
    assert.equal(after.mesh, a.node.did)
    // A chain rooted in the new key connects, and the peer verifies it.
    const { id } = await a.api.post<{ id: string }>('/api/connections', {
      target: b.addr(),
      ucan: await chainAct(a, 'mesh/connect', b.node.did),
    })
    await waitFor(async () => (await statusAt(b, id))?.status === 'pending', 'request at beta')
  })

  it('from a peer: the forwarded chain must be rooted in the peer, addressed to it, and show a human it vouches for', async (t) => {
    const a = await startNode(t, 'alpha')
    const m = await foreignMesh(t)
    const request = async (options: {
      audience?: string
      credentials?: string[]
      architectDid?: string
      signer?: Ed25519KeyPair
    }) => {
      const invocation = await issueInvocation({
        issuer: options.signer ?? mallory,
        audience: options.audience ?? m.key.did,
        capability: { can: 'mesh/connect', with: m.key.did, nb: { peer: a.node.did } },
        expiration: Math.floor(Date.now() / 1000) + 600,
        proofs: [m.root],
      })
      const envelope = createEnvelope(m.key, {
        type: 'connect.request',
        target: a.node.did,
        protocol: MESH_CONNECT_PROTOCOL,
        body: {
          connectionId: Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url'),
          nonce: Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url'),
          name: 'm',
          architectDid: options.architectDid ?? mallory.did,
          multiaddrs: [],
          protocolVersions: [MESH_CONNECT_PROTOCOL],
          agreementVersion: 1,
          decidedAt: Date.now(),
        },
        auth: { proofs: [await encodeToken(invocation), ...(options.credentials ?? [])] },
      })
      return sendRaw(m.libp2p, a, encodeEnvelope(envelope))
    }
    const claims = (issuer: Ed25519KeyPair) => ({
      id: mallory.did,
      kind: 'human' as const,
      role: 'architect',
      tier: 1 as const,
      mesh: issuer.did,
      meshName: 'm',
    })
    const vouched = await issueMembershipCredential(m.key, claims(m.key))
    const other = Ed25519KeyPair.generate()
    const elsewhere = await issueMembershipCredential(other, claims(other))

    refusedWith(await request({}), 'MESH_NOT_HUMAN_SIGNED')
    refusedWith(await request({ credentials: [elsewhere] }), 'MESH_NOT_HUMAN_SIGNED')
    refusedWith(
      await request({ credentials: [vouched], audience: a.node.did }),
      'MESH_UCAN_INVALID',
      'audience',
    )
    refusedWith(await request({ credentials: [vouched], architectDid: bob.did }), 'MESH_FORBIDDEN')
    refusedWith(await request({ credentials: [vouched], signer: bob }), 'MESH_UCAN_INVALID', 'alignment')
    assert.deepEqual(await a.connections(), [])

    const ok = await request({ credentials: [vouched] })
    assert.equal(ok.type, 'connect.ack', JSON.stringify(ok.body))
    const [conn] = await a.connections()
    assert.equal(conn?.status, 'pending')
    assert.equal(conn?.peerDid, m.key.did)
  })
})
