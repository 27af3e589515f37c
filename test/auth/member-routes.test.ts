import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { MemberList, Membership, MemberView } from '../../src/api/index.ts'
import type { AuditPage } from '../../src/audit/index.ts'
import {
  agentResourceOf,
  CredentialVerifier,
  DidResolver,
  issueMembershipCredential,
  verifyMembership,
} from '../../src/auth/index.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import { signIn } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { startNode, type TestNode } from '../connections/nodes.ts'
import { tempStore } from '../fixtures/principals.ts'
import { listenTestRegistry } from '../registry/registry-fixtures.ts'
import { grant, rootOf } from './chain-acts.ts'

type Proofs = Awaited<ReturnType<typeof rootOf>>[]

/** A `mesh/enrol` act on `node` (signed by its architect with the root, or `signer` with `proofs`). */
async function enrolAct(
  node: TestNode,
  nb: { did: string; kind: string; role: string },
  options: { signer?: Ed25519KeyPair; proofs?: Proofs } = {},
): Promise<string> {
  return invocationToken(
    options.signer ?? node.architect,
    node.node.did,
    { can: 'mesh/enrol', with: node.node.did, nb },
    options.proofs ?? [await rootOf(node)],
  )
}

async function removeAct(
  node: TestNode,
  did: string,
  options: { signer?: Ed25519KeyPair; proofs?: Proofs } = {},
): Promise<string> {
  return invocationToken(
    options.signer ?? node.architect,
    node.node.did,
    { can: 'mesh/remove', with: node.node.did, nb: { did } },
    options.proofs ?? [await rootOf(node)],
  )
}

async function enrol(
  node: TestNode,
  key: Ed25519KeyPair,
  kind: 'human' | 'agent',
  name: string,
  options: { signer?: Ed25519KeyPair; proofs?: Proofs; role?: string } = {},
): Promise<MemberView> {
  const role = options.role ?? (kind === 'human' ? 'user' : 'agent')
  const ucan = await enrolAct(node, { did: key.did, kind, role }, options)
  return node.api.post<MemberView>('/api/members', {
    did: key.did,
    kind,
    name,
    ...(options.role !== undefined ? { role } : {}),
    ucan,
  })
}

async function promote(node: TestNode, did: string, tier: number): Promise<void> {
  const ucan = await invocationToken(
    node.architect,
    node.node.did,
    { can: 'trust/promote', with: node.node.did, nb: { subject: did, tier, reason: 'test' } },
    [await rootOf(node)],
  )
  await node.api.put(`/api/trust/${did}`, { tier, reason: 'test', ucan })
}

/** A refusal with this code and `details.reason`. */
const refusal = (code: string, reason: string) => (err: unknown) => {
  const e = err as { code?: string; details?: { reason?: unknown } }
  assert.deepEqual([e.code, e.details?.reason], [code, reason], String(err))
  return true
}

/** alpha with a human carol and an agent bot enrolled by its architect (both tier 4). */
async function alphaWithCarolAndBot(t: TestContext) {
  const a = await startNode(t, 'alpha')
  const carol = Ed25519KeyPair.generate()
  const bot = Ed25519KeyPair.generate()
  await enrol(a, carol, 'human', 'carol')
  await enrol(a, bot, 'agent', 'bot')
  return { a, carol, bot }
}

const remove = (node: TestNode, did: string, ucan: string) =>
  node.api.request<undefined>('DELETE', `/api/members/${did}`, { ucan })

describe('members: enrolment (POST /api/members, GET /api/members, credentials)', () => {
  it('enrols a human and an agent; both sign in; the list and their credentials say kind, role and tier', async (t) => {
    const a = await startNode(t, 'alpha')
    const carol = Ed25519KeyPair.generate()
    const bot = Ed25519KeyPair.generate()
    const human = await enrol(a, carol, 'human', 'carol')
    assert.deepEqual(
      [human.did, human.kind, human.name, human.localId, human.role, human.tier, human.enrolledBy],
      [carol.did, 'human', 'carol', 'carol', 'user', 4, a.architect.did],
    )
    const agent = await enrol(a, bot, 'agent', 'bot', { role: 'helper' })
    assert.deepEqual([agent.kind, agent.role], ['agent', 'helper'])

    const asCarol = await signIn(a.node.httpUrl, carol)
    const asBot = await signIn(a.node.httpUrl, bot)
    assert.equal((await asCarol.get<{ role: string }>('/api/me')).role, 'human')
    assert.equal((await asBot.get<{ role: string }>('/api/me')).role, 'agent')

    const { members } = await asCarol.get<MemberList>('/api/members')
    assert.deepEqual(
      members.map((m) => [m.name, m.kind, m.role, m.tier]),
      [
        ['alpha-architect', 'human', 'architect', 1],
        ['bot', 'agent', 'helper', 4],
        ['carol', 'human', 'user', 4],
        ['echo', 'agent', 'agent', 3],
        ['summarizer', 'agent', 'agent', 3],
      ],
    )
    assert.ok(members.every((m) => m.enrolledAt.length > 0 && m.localId === m.name))

    // The credential: a VC-JWT by the mesh key that any peer checks offline, for this mesh only.
    const { vc } = await a.api.get<{ vc: string }>(`/api/members/${carol.did}/credential`)
    const peer = new CredentialVerifier({ resolver: new DidResolver() })
    const seen = await verifyMembership(peer, vc, { mesh: a.node.did })
    assert.deepEqual(
      [seen.ok?.id, seen.ok?.kind, seen.ok?.role, seen.ok?.tier, seen.ok?.mesh],
      [carol.did, 'human', 'user', 4, a.node.did],
    )
    assert.ok((seen.ok?.exp ?? 0) > Date.now() / 1000)
    const elsewhere = await verifyMembership(peer, vc, { mesh: Ed25519KeyPair.generate().did })
    assert.deepEqual([elsewhere.error?.code, elsewhere.error?.details.reason], ['MESH_VC_INVALID', 'mesh'])
    const botVc = (await a.api.get<{ vc: string }>(`/api/members/${bot.did}/credential`)).vc
    const checked = await a.api.post<Membership>('/api/members/credential/verify', { vc: botVc })
    assert.deepEqual([checked.kind, checked.role, checked.tier], ['agent', 'helper', 4])

    // A promotion shows in the list and in a fresh credential.
    await promote(a, carol.did, 2)
    const again = (await a.api.get<{ vc: string }>(`/api/members/${carol.did}/credential`)).vc
    assert.notEqual(again, vc)
    assert.equal((await verifyMembership(peer, again, { mesh: a.node.did })).ok?.tier, 2)

    const audit = await a.api.get<AuditPage>('/api/audit?action=member.enrolled&limit=10')
    assert.deepEqual(
      audit.entries.map((e) => [e.actor, e.subject, e.details.kind]).sort(),
      [
        [a.architect.did, bot.did, 'agent'],
        [a.architect.did, carol.did, 'human'],
      ].sort(),
    )
  })

  it('a tier-2 human enrols with a chain; a tier-3 one, an agent and an unsigned or mismatched act are refused', async (t) => {
    const { a, carol, bot } = await alphaWithCarolAndBot(t)
    const dave = Ed25519KeyPair.generate()
    const body = async (ucan: string, extra: Record<string, unknown> = {}) => ({
      did: dave.did,
      kind: 'human',
      name: 'dave',
      ucan,
      ...extra,
    })
    const post = (b: unknown) => a.api.post<MemberView>('/api/members', b)
    const daveNb = { did: dave.did, kind: 'human', role: 'user' }

    // No act, a malformed one, oversized and unknown fields: refused by the schema or the gate.
    await assert.rejects(post({ did: dave.did, kind: 'human', name: 'dave' }), { code: 'MESH_BAD_REQUEST' })
    await assert.rejects(post(await body('not-a-chain')), { code: 'MESH_UCAN_INVALID' })
    await assert.rejects(post(await body('A'.repeat(20_000))), { code: 'MESH_BAD_REQUEST' })
    const ok = await enrolAct(a, daveNb)
    await assert.rejects(post(await body(ok, { tier: 1 })), { code: 'MESH_BAD_REQUEST' })
    await assert.rejects(post(await body(ok, { name: 'x'.repeat(65) })), { code: 'MESH_BAD_REQUEST' })
    await assert.rejects(post(await body(ok, { kind: 'robot' })), { code: 'MESH_BAD_REQUEST' })
    await assert.rejects(post({ ...(await body(ok)), did: 'did:web:example.com' }), {
      code: 'MESH_BAD_REQUEST',
    })
    // The body must say what was signed.
    await assert.rejects(post(await body(ok, { kind: 'agent' })), { code: 'MESH_BAD_REQUEST' })
    // Without a session.
    await assert.rejects(
      fetch(`${a.node.httpUrl}/api/members`).then(async (r) => {
        throw Object.assign(new Error('refused'), {
          code: ((await r.json()) as { error: { code: string } }).error.code,
        })
      }),
      { code: 'MESH_UNAUTHENTICATED' },
    )

    // carol holds mesh/enrol from the architect: at tier 4 and 3 she may not use it, at 2 she may.
    const toCarol = await grant(a, carol.did, { can: 'mesh/enrol', with: a.node.did })
    const byCarol = () => enrolAct(a, daveNb, { signer: carol, proofs: [toCarol.view] })
    await assert.rejects(post(await body(await byCarol())), { code: 'MESH_TIER_FORBIDDEN' })
    await promote(a, carol.did, 3)
    await assert.rejects(post(await body(await byCarol())), { code: 'MESH_FORBIDDEN' })
    // An agent's key holding the architect's delegation is no human signing.
    await promote(a, bot.did, 2)
    const toBot = await grant(a, bot.did, { can: 'mesh/enrol', with: a.node.did })
    await assert.rejects(post(await body(await enrolAct(a, daveNb, { signer: bot, proofs: [toBot.view] }))), {
      code: 'MESH_NOT_HUMAN_SIGNED',
    })
    // An agent's key with no chain at all, posing as the architect.
    await assert.rejects(post(await body(await enrolAct(a, daveNb, { signer: bot, proofs: [] }))), {
      code: 'MESH_UCAN_INVALID',
    })
    // A delegation that fixes the kind only narrows.
    const agentsOnly = await grant(a, carol.did, {
      can: 'mesh/enrol',
      with: a.node.did,
      nb: { kind: 'agent' },
    })
    await promote(a, carol.did, 2)
    await assert.rejects(
      post(await body(await enrolAct(a, daveNb, { signer: carol, proofs: [agentsOnly.view] }))),
      { code: 'MESH_UCAN_INVALID' },
    )
    const dave2 = await post(await body(await byCarol()))
    assert.deepEqual([dave2.did, dave2.enrolledBy], [dave.did, carol.did])
    // Enrolled once; a name once.
    await assert.rejects(post(await body(await enrolAct(a, daveNb))), { code: 'MESH_CONFLICT' })
    const erin = Ed25519KeyPair.generate()
    await assert.rejects(
      post({
        did: erin.did,
        kind: 'human',
        name: 'dave',
        ucan: await enrolAct(a, { did: erin.did, kind: 'human', role: 'user' }),
      }),
      { code: 'MESH_CONFLICT' },
    )
  })

  it('a credential of another mesh, forged or malformed, is refused by the verifier', async (t) => {
    const a = await startNode(t, 'alpha')
    const other = Ed25519KeyPair.generate()
    const carol = Ed25519KeyPair.generate()
    const foreign = await issueMembershipCredential(other, {
      id: carol.did,
      kind: 'human',
      role: 'user',
      tier: 1,
      mesh: other.did,
      meshName: 'other',
    })
    const verify = (vc: string) => a.api.post<Membership>('/api/members/credential/verify', { vc })
    await assert.rejects(verify(foreign), refusal('MESH_VC_INVALID', 'mesh'))
    const [h, p] = foreign.split('.')
    await assert.rejects(verify(`${h}.${p}.${'A'.repeat(86)}`), { code: 'MESH_VC_INVALID' })
    await assert.rejects(verify('x.y.z'), { code: 'MESH_VC_INVALID' })
    await assert.rejects(verify('x'.repeat(9000)), { code: 'MESH_BAD_REQUEST' })
    const expired = await issueMembershipCredential(
      other,
      { id: carol.did, kind: 'human', role: 'user', tier: 4, mesh: other.did, meshName: 'other' },
      { now: Date.now() - 10 * 86400_000, ttlSeconds: 3600 },
    )
    const peer = new CredentialVerifier({ resolver: new DidResolver() })
    assert.equal((await verifyMembership(peer, expired, { mesh: other.did })).error?.code, 'MESH_VC_INVALID')
    await assert.rejects(a.api.get(`/api/members/${carol.did}/credential`), { code: 'MESH_NOT_FOUND' })
  })
})

describe('members: removal (DELETE /api/members/:did)', () => {
  it('ends its sessions at once, refuses its sign-in, revokes its credential and its old chains', async (t) => {
    const a = await startNode(t, 'alpha')
    const carol = Ed25519KeyPair.generate()
    await enrol(a, carol, 'human', 'carol')
    await promote(a, carol.did, 2)
    const asCarol = await signIn(a.node.httpUrl, carol)
    const { vc } = await a.api.get<{ vc: string }>(`/api/members/${carol.did}/credential`)
    // carol's chains: agent/invoke from the architect, and re-delegated by her to dave.
    const echo = agentResourceOf(a.node.did, 'echo')
    const toCarol = await grant(a, carol.did, { can: 'agent/invoke', with: echo })
    const dave = Ed25519KeyPair.generate()
    const toDave = await grant(
      a,
      dave.did,
      { can: 'agent/invoke', with: echo },
      { issuer: carol, proofs: [toCarol.view] },
    )
    const invoke = async (signer: Ed25519KeyPair, proofs: Proofs) =>
      a.api.post<{ result: unknown }>('/api/invoke', {
        ucan: await invocationToken(
          signer,
          a.node.did,
          { can: 'agent/invoke', with: echo, nb: { ability: 'echo', input: { text: 'hi' } } },
          proofs,
        ),
      })
    await promote(a, dave.did, 3)
    await invoke(carol, [toCarol.view])
    await invoke(dave, [toDave.view])
    const removed: string[] = []
    a.node.memberService.onRemoved((did) => {
      removed.push(did)
    })

    // Not found, the architect, a non-member signer: refused before anything changes.
    await assert.rejects(remove(a, dave.did, await removeAct(a, dave.did)), { code: 'MESH_NOT_FOUND' })
    await assert.rejects(remove(a, a.architect.did, await removeAct(a, a.architect.did)), {
      code: 'MESH_FORBIDDEN',
    })
    await assert.rejects(remove(a, carol.did, 'garbage'), { code: 'MESH_UCAN_INVALID' })
    await assert.rejects(remove(a, carol.did, await removeAct(a, dave.did)), { code: 'MESH_UCAN_INVALID' })

    assert.equal(await remove(a, carol.did, await removeAct(a, carol.did)), undefined)
    assert.deepEqual(removed, [carol.did], 'the onRemoved hook ran before the answer')
    await assert.rejects(asCarol.get('/api/me'), { code: 'MESH_UNAUTHENTICATED' })
    await assert.rejects(signIn(a.node.httpUrl, carol), { code: 'MESH_FORBIDDEN' })
    await assert.rejects(
      a.api.post('/api/members/credential/verify', { vc }),
      refusal('MESH_VC_INVALID', 'revoked'),
    )
    const peerSide = await a.node.memberService.verify(vc)
    assert.equal(peerSide.error?.details.reason, 'revoked')
    await assert.rejects(invoke(carol, [toCarol.view]), refusal('MESH_UCAN_INVALID', 'removed'))
    await assert.rejects(invoke(dave, [toDave.view]), refusal('MESH_UCAN_INVALID', 'removed'))
    const { members } = await a.api.get<MemberList>('/api/members')
    assert.ok(!members.some((m) => m.did === carol.did))
    await assert.rejects(a.api.get(`/api/members/${carol.did}/credential`), { code: 'MESH_NOT_FOUND' })
    const audit = await a.api.get<AuditPage>('/api/audit?action=member.removed&limit=10')
    assert.deepEqual(
      audit.entries.map((e) => [e.actor, e.subject]),
      [[a.architect.did, carol.did]],
    )
    // Enrolled again, she is a member again (the removal does not outlive a new enrolment).
    await enrol(a, carol, 'human', 'carol')
    await signIn(a.node.httpUrl, carol)
  })

  it('a tier-3 human or an agent may not remove; a tier-2 human may', async (t) => {
    const { a, carol, bot } = await alphaWithCarolAndBot(t)
    await promote(a, carol.did, 3)
    await promote(a, bot.did, 2)
    const toCarol = await grant(a, carol.did, { can: 'mesh/remove', with: a.node.did })
    const toBot = await grant(a, bot.did, { can: 'mesh/remove', with: a.node.did })
    const byCarol = () => removeAct(a, bot.did, { signer: carol, proofs: [toCarol.view] })
    await assert.rejects(remove(a, bot.did, await byCarol()), { code: 'MESH_FORBIDDEN' })
    await assert.rejects(
      remove(a, carol.did, await removeAct(a, carol.did, { signer: bot, proofs: [toBot.view] })),
      {
        code: 'MESH_NOT_HUMAN_SIGNED',
      },
    )
    await promote(a, carol.did, 2)
    await remove(a, bot.did, await byCarol())
    await assert.rejects(signIn(a.node.httpUrl, bot), { code: 'MESH_FORBIDDEN' })
  })
})

describe('members: after a key rotation', () => {
  it('every member holds a credential of the new key, so a tier-2 human still enrols', async (t) => {
    const a = await startNode(t, 'alpha')
    const carol = Ed25519KeyPair.generate()
    await enrol(a, carol, 'human', 'carol')
    await promote(a, carol.did, 2)
    const before = a.node.did
    await a.api.post('/api/keys/rotate', { ucan: await a.act('mesh/rotate-key') })
    assert.notEqual(a.node.did, before)
    // Before anyone asks for her credential: the rotation already issued one of the new key.
    const toCarol = await grant(a, carol.did, { can: 'mesh/enrol', with: a.node.did })
    const dave = Ed25519KeyPair.generate()
    const added = await enrol(a, dave, 'human', 'dave', { signer: carol, proofs: [toCarol.view] })
    assert.equal(added.enrolledBy, carol.did)
    const { vc } = await a.api.get<{ vc: string }>(`/api/members/${carol.did}/credential`)
    const seen = await a.node.memberService.verify(vc)
    assert.deepEqual([seen.ok?.mesh, seen.ok?.tier], [a.node.did, 2])
  })
})

describe('members: the registry counts humans and agents', () => {
  it('lists a mesh with 3 humans (the architect among them) and 2 agents', async (t) => {
    const registry = await listenTestRegistry(t, await tempStore(t), { heartbeatIntervalMs: 60_000 })
    const a = await startNode(t, 'alpha', { registryUrl: registry.url, public: true })
    // The built-in agents echo and summarizer are the 2 agents; carol and dave join the architect.
    await enrol(a, Ed25519KeyPair.generate(), 'human', 'carol')
    await enrol(a, Ed25519KeyPair.generate(), 'human', 'dave')
    const deadline = Date.now() + 10_000
    for (;;) {
      const page = (await (await fetch(`${registry.url}/api/meshes/public?limit=100`)).json()) as {
        meshes: Array<{ did: string; members: number; bots: number }>
      }
      const entry = page.meshes.find((m) => m.did === a.node.did)
      if (entry?.members === 3) {
        assert.deepEqual([entry.members, entry.bots], [3, 2])
        break
      }
      if (Date.now() > deadline) assert.fail(`the registry lists ${JSON.stringify(entry)}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })
})
