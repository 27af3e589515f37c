import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { CID } from 'multiformats/cid'
import type { DelegationList, IssuedDelegationView, RevokeResultView } from '../../src/api/index.ts'
import {
  agentResourceOf,
  issueMembershipCredential,
  type RevocationNotice,
  signRevocationNotice,
} from '../../src/auth/index.ts'
import { delegationToken, invocationToken, proofOf } from '../../src/cli/chains.ts'
import { signIn } from '../../src/cli/http-client.ts'
import {
  createEnvelope,
  encodeEnvelope,
  MESH_CONNECT_PROTOCOL,
  type RejectedEntry,
} from '../../src/connections/index.ts'
import { Ed25519KeyPair, MESH_KEY_FILE, readKeyFile } from '../../src/identity/index.ts'
import { rootOf } from '../auth/chain-acts.ts'
import { mallory } from '../fixtures/principals.ts'
import { startHost, waitFor } from '../p2p/nodes.ts'
import { decide, listenOf, requestConnection, sendRaw, startNode, statusAt, type TestNode } from './nodes.ts'

type Reply = Awaited<ReturnType<typeof sendRaw>>

const dave = Ed25519KeyPair.generate()

/** alpha and beta, in-process (real libp2p over TCP), with an accepted connection. */
async function pair(t: TestContext) {
  const a = await startNode(t, 'alpha')
  const b = await startNode(t, 'beta')
  const id = await requestConnection(a, b)
  await waitFor(async () => (await statusAt(b, id))?.status === 'pending', 'request at beta')
  await decide(b, id, 'accept')
  await waitFor(async () => (await statusAt(a, id))?.status === 'accepted', 'accepted at alpha')
  const alphaKey = await readKeyFile(join(a.dataDir, MESH_KEY_FILE))
  return { a, b, id, alphaKey }
}

/** A delegation of beta's echo agent from `issuer` to dave (no proofs needed to be revoked). */
async function delegation(b: TestNode, issuer: Ed25519KeyPair, ttlSeconds = 3600) {
  const capability = { can: 'agent/invoke', with: agentResourceOf(b.node.did, 'echo') }
  return delegationToken(issuer, dave.did, capability, [], ttlSeconds)
}

/** A `ucan/revoke` act on `node` naming `cid`, by its architect (or `signer` with `proofs`). */
async function revokeAct(
  node: TestNode,
  cid: string,
  options: { signer?: Ed25519KeyPair; proofs?: Awaited<ReturnType<typeof rootOf>>[]; reason?: string } = {},
) {
  return invocationToken(
    options.signer ?? node.architect,
    node.node.did,
    {
      can: 'ucan/revoke',
      with: node.node.did,
      nb: { ucan: CID.parse(cid), ...(options.reason !== undefined ? { reason: options.reason } : {}) },
    },
    options.proofs ?? [await rootOf(node)],
  )
}

const code = (expected: string, reason?: string) => (err: unknown) => {
  const e = err as { code?: string; details?: { reason?: unknown } }
  assert.equal(e.code, expected, String(err))
  if (reason !== undefined) assert.equal(e.details?.reason, reason, JSON.stringify(e.details))
  return true
}

function refusedWith(reply: Reply, expected: string, reason?: string): void {
  assert.equal(reply.type, 'connect.error', JSON.stringify(reply.body))
  assert.equal(reply.body.code, expected, JSON.stringify(reply.body))
  if (reason !== undefined) assert.equal((reply.body.details as { reason?: string }).reason, reason)
}

const held = async (node: TestNode) =>
  (await node.api.get<DelegationList>('/api/auth/delegations')).revocations.map((r) => r.cid)

describe('revocation people can use (SPEC §9)', () => {
  it('the route: who may revoke, what is recorded, what travels; the console list', async (t) => {
    const { a, b } = await pair(t)
    const carol = Ed25519KeyPair.generate()
    await a.api.post('/api/members', {
      did: carol.did,
      kind: 'human',
      name: 'carol',
      ucan: await invocationToken(
        a.architect,
        a.node.did,
        { can: 'mesh/enrol', with: a.node.did, nb: { did: carol.did, kind: 'human', role: 'user' } },
        [await rootOf(a)],
      ),
    })
    const asCarol = await signIn(a.node.httpUrl, carol)

    // Recording: by the issuer (or the architect), only what a principal of this mesh issued.
    const byCarol = await delegation(b, carol)
    const recorded = await asCarol.post<IssuedDelegationView>('/api/auth/delegations', {
      delegation: byCarol.token,
    })
    assert.deepEqual(
      [recorded.cid, recorded.issuer, recorded.audience, recorded.revoked],
      [byCarol.cid, carol.did, dave.did, null],
    )
    const byMallory = await delegation(b, mallory)
    await assert.rejects(
      a.api.post('/api/auth/delegations', { delegation: byMallory.token }),
      code('MESH_FORBIDDEN', 'not-ours'),
    )
    const byArchitect = await delegation(b, a.architect)
    await assert.rejects(
      asCarol.post('/api/auth/delegations', { delegation: byArchitect.token }),
      code('MESH_FORBIDDEN'),
    )
    // Hostile bodies: not a token, too large, unknown fields.
    await assert.rejects(
      a.api.post('/api/auth/delegations', { delegation: 'AAAA' }),
      code('MESH_BAD_REQUEST'),
    )
    await assert.rejects(
      a.api.post('/api/auth/delegations', { delegation: 'A'.repeat(40 * 1024) }),
      (err: { code?: string }) => ['MESH_BAD_REQUEST', 'MESH_TOO_LARGE'].includes(err.code ?? ''),
    )
    await assert.rejects(
      a.api.post('/api/auth/revoke', { cid: byCarol.cid, ucan: 'x', extra: 1 }),
      code('MESH_BAD_REQUEST'),
    )

    // Who may revoke: not carol (a tier-4 human) for the architect's delegation …
    const carolMayRevoke = await delegationToken(
      a.architect,
      carol.did,
      { can: 'ucan/revoke', with: a.node.did },
      [await rootOf(a)],
      3600,
    )
    await assert.rejects(
      asCarol.post('/api/auth/revoke', {
        cid: byArchitect.cid,
        delegation: byArchitect.token,
        ucan: await revokeAct(a, byArchitect.cid, { signer: carol, proofs: [proofOf(carolMayRevoke.token)] }),
      }),
      code('MESH_FORBIDDEN', 'not-the-issuer'),
    )
    // … but carol may revoke her own (the issuer), with the architect's ucan/revoke delegation.
    const byCarolToo = await delegation(b, carol, 7200)
    await asCarol.post('/api/auth/delegations', { delegation: byCarolToo.token })
    const own = await asCarol.post<RevokeResultView>('/api/auth/revoke', {
      cid: byCarolToo.cid,
      ucan: await revokeAct(a, byCarolToo.cid, { signer: carol, proofs: [proofOf(carolMayRevoke.token)] }),
    })
    assert.deepEqual([own.revocation.by, own.announcedTo], [carol.did, [b.node.did]])
    // … the body and the act must name the same delegation …
    await assert.rejects(
      a.api.post('/api/auth/revoke', { cid: byCarol.cid, ucan: await revokeAct(a, byArchitect.cid) }),
      code('MESH_BAD_REQUEST'),
    )
    // … a token that is not the CID named is refused.
    await assert.rejects(
      a.api.post('/api/auth/revoke', {
        cid: byCarol.cid,
        delegation: byArchitect.token,
        ucan: await revokeAct(a, byCarol.cid),
      }),
      code('MESH_SIGNATURE_MISMATCH'),
    )
    assert.deepEqual(await held(a), [byCarolToo.cid])

    // The architect revokes carol's recorded delegation: it travels to beta.
    const res = await a.api.post<RevokeResultView>('/api/auth/revoke', {
      cid: byCarol.cid,
      ucan: await revokeAct(a, byCarol.cid, { reason: 'carol left' }),
    })
    assert.deepEqual(res.announcedTo, [b.node.did])
    assert.equal(res.revocation.notice?.mesh, a.node.did)
    await waitFor(async () => (await held(b)).includes(byCarol.cid), 'beta holds the revocation')
    // Again: already revoked.
    await assert.rejects(
      a.api.post('/api/auth/revoke', { cid: byCarol.cid, ucan: await revokeAct(a, byCarol.cid) }),
      code('MESH_CONFLICT'),
    )
    const list = await a.api.get<DelegationList>('/api/auth/delegations')
    assert.equal(list.delegations.find((d) => d.cid === byCarol.cid)?.revoked?.reason, 'carol left')
    assert.deepEqual(
      list.revocations.map((r) => r.by),
      [a.architect.did, carol.did],
    )
    // beta's audit row names alpha as the actor.
    const audit = await b.api.get<{ entries: Array<{ action: string; actor: string; subject?: string }> }>(
      '/api/audit?action=ucan.revoked',
    )
    assert.ok(audit.entries.some((e) => e.actor === a.node.did && e.subject === byCarol.cid))

    // beta is away when alpha revokes: the notice waits in alpha's outbox and reaches beta
    // when it is back (on the same address).
    const listen = listenOf(b.node)
    const betaDid = b.node.did
    await b.stop()
    const capability = { can: 'agent/invoke', with: agentResourceOf(betaDid, 'echo') }
    const whileAway = await delegationToken(a.architect, dave.did, capability, [], 9000)
    const queued = await a.api.post<RevokeResultView>('/api/auth/revoke', {
      cid: whileAway.cid,
      delegation: whileAway.token,
      ucan: await revokeAct(a, whileAway.cid),
    })
    assert.deepEqual(queued.announcedTo, [betaDid])
    await b.restart({ listen })
    await waitFor(async () => (await held(b)).includes(whileAway.cid), 'beta gets it when back', 20_000)
  })

  it('beta refuses forged, foreign, mismatched, oversized and replayed ucan.revoked messages; what passes holds after a restart', async (t) => {
    const { a, b, id, alphaKey } = await pair(t)
    const send = (body: Record<string, unknown>, key = alphaKey, type = 'ucan.revoked') =>
      sendRaw(
        a.node.libp2p,
        b,
        encodeEnvelope(
          createEnvelope(key, { type, target: b.node.did, protocol: MESH_CONNECT_PROTOCOL, body }),
        ),
      )
    const notice = (cid: string, key = alphaKey): RevocationNotice =>
      signRevocationNotice(key, { cid, by: a.architect.did, at: new Date().toISOString(), reason: 'test' })
    const body = (d: { token: string; cid: string }, n = notice(d.cid), credentials: string[] = []) => ({
      connectionId: id,
      notice: n,
      delegation: d.token,
      credentials,
    })

    // Forged: the notice's reason changed after signing.
    const byArchitect = await delegation(b, a.architect)
    refusedWith(
      await send(body(byArchitect, { ...notice(byArchitect.cid), reason: 'other' })),
      'MESH_SIGNATURE_MISMATCH',
      'notice-signature',
    )
    // A notice signed by a key that is not alpha's (mallory's), even inside alpha's envelope.
    refusedWith(
      await send(body(byArchitect, notice(byArchitect.cid, mallory))),
      'MESH_SIGNATURE_MISMATCH',
      'notice-signature',
    )
    // The notice names another delegation than the token sent.
    const other = await delegation(b, a.architect, 7200)
    refusedWith(await send(body(byArchitect, notice(other.cid))), 'MESH_SIGNATURE_MISMATCH')
    // A delegation beta's own architect issued: alpha cannot revoke it.
    const byBeta = await delegation(b, b.architect)
    refusedWith(await send(body(byBeta)), 'MESH_FORBIDDEN', 'not-their-principal')
    // Issued by someone alpha does not vouch for (no credential, or one from another mesh's key).
    const stranger = Ed25519KeyPair.generate()
    const byStranger = await delegation(b, stranger)
    refusedWith(await send(body(byStranger)), 'MESH_FORBIDDEN', 'not-their-principal')
    const otherMesh = Ed25519KeyPair.generate()
    const foreignVc = await issueMembershipCredential(otherMesh, {
      id: stranger.did,
      kind: 'human',
      role: 'user',
      tier: 4,
      mesh: otherMesh.did,
      meshName: 'other',
    })
    refusedWith(await send(body(byStranger, undefined, [foreignVc])), 'MESH_FORBIDDEN', 'not-their-principal')
    // Malformed and oversized bodies.
    refusedWith(await send({ connectionId: id, notice: notice(byArchitect.cid) }), 'MESH_BAD_REQUEST')
    refusedWith(await send({ ...body(byArchitect), delegation: 'A'.repeat(33 * 1024) }), 'MESH_BAD_REQUEST')
    // Beyond the envelope limit the stream is cut before anything is read.
    await assert.rejects(send({ ...body(byArchitect), delegation: 'A'.repeat(70 * 1024) }))
    // Not over this connection: an unknown connection id.
    refusedWith(await send({ ...body(byArchitect), connectionId: 'x'.repeat(22) }), 'MESH_NOT_FOUND')
    // A stranger mesh, not connected at all, naming alpha's connection.
    const { libp2p } = await startHost(t, { key: otherMesh })
    const fromStranger = createEnvelope(otherMesh, {
      type: 'ucan.revoked',
      target: b.node.did,
      protocol: MESH_CONNECT_PROTOCOL,
      body: body(byArchitect, notice(byArchitect.cid, otherMesh)),
    })
    refusedWith(
      await sendRaw(libp2p, b, encodeEnvelope(fromStranger)),
      'MESH_SIGNATURE_MISMATCH',
      'key-not-introduced',
    )
    assert.deepEqual(await held(b), [])

    // What passes: the architect's delegation, and a member's vouched for by alpha's credential.
    const envelope = createEnvelope(alphaKey, {
      type: 'ucan.revoked',
      target: b.node.did,
      protocol: MESH_CONNECT_PROTOCOL,
      body: body(byArchitect),
    })
    const ok = await sendRaw(a.node.libp2p, b, encodeEnvelope(envelope))
    assert.equal(ok.type, 'connect.ack', JSON.stringify(ok.body))
    // The same envelope again is a replay (applied once).
    refusedWith(await sendRaw(a.node.libp2p, b, encodeEnvelope(envelope)), 'MESH_REPLAY', 'duplicate')
    const member = Ed25519KeyPair.generate()
    const byMember = await delegation(b, member)
    const vc = await issueMembershipCredential(alphaKey, {
      id: member.did,
      kind: 'human',
      role: 'user',
      tier: 4,
      mesh: alphaKey.did,
      meshName: 'alpha',
    })
    assert.equal((await send(body(byMember, undefined, [vc]))).type, 'connect.ack')
    assert.deepEqual((await held(b)).sort(), [byArchitect.cid, byMember.cid].sort())

    // Every refusal is in beta's rejected log.
    const rejected = await b.api.get<{ entries: RejectedEntry[] }>('/api/federation/rejected?limit=100')
    assert.ok(rejected.entries.filter((e) => e.peer === a.node.did).length >= 9)

    // A chain through a revoked link is refused at beta with reason revoked, also after a restart.
    await b.restart()
    assert.deepEqual((await held(b)).sort(), [byArchitect.cid, byMember.cid].sort())
    const chain = await b.node.authority.verifyAuthority({
      ucan: await invocationToken(
        dave,
        b.node.did,
        { can: 'agent/invoke', with: agentResourceOf(b.node.did, 'echo'), nb: { ability: 'echo' } },
        [proofOf(byArchitect.token)],
      ),
      can: 'agent/invoke',
      with: agentResourceOf(b.node.did, 'echo'),
      nb: { ability: 'echo' },
    })
    assert.equal(chain.error?.details.reason, 'revoked', JSON.stringify(chain.error))
  })
})
