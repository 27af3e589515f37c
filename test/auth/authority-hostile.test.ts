import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { delegate as ucantoDelegate } from '@ucanto/core'
import type * as API from '@ucanto/interface'
import {
  type AuthorityVerdict,
  CAPABILITIES,
  encodeToken,
  issueMembershipCredential,
  NodeEd25519Signer,
} from '../../src/auth/authority/index.ts'
import { issueDelegation } from '../../src/auth/authority/token.ts'
import { tempStore } from '../fixtures/principals.ts'
import {
  alice,
  beta,
  betaMembership,
  bob,
  carol,
  dave,
  delegate,
  evil,
  HOUR,
  invoke,
  mallory,
  NOW,
  NOW_S,
  passed,
  post,
  refused,
  restartMesh,
  room,
  service,
  startMesh,
  verifyConnect,
} from './authority-fixtures.ts'

describe('authority: hostile cases (each refused with its code and proof)', () => {
  it('expired invocation (61 s past exp) is refused; 60 s past exp passes', async (t) => {
    const { authority, root } = await startMesh(t)
    const ucan61 = await invoke(alice, post(), [root], { exp: NOW_S - 61 })
    refused(
      await authority.verifyAuthority({ ucan: ucan61, ...post() }),
      'MESH_UCAN_INVALID',
      'ucan',
      'expired',
    )
    const ucan60 = await invoke(alice, post(), [root], { exp: NOW_S - 60 })
    passed(await authority.verifyAuthority({ ucan: ucan60, ...post() }))
  })

  it('an expired delegation in the middle of the chain', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(alice, dave.did, [post()], [root], { exp: NOW_S - 120 })
    refused(
      await authority.verifyAuthority({ ucan: await invoke(dave, post(), [grant]), ...post() }),
      'MESH_UCAN_INVALID',
      'ucan',
      'expired',
    )
  })

  it('not yet valid: nbf 61 s ahead is clock skew; 60 s ahead passes', async (t) => {
    const { authority, root } = await startMesh(t)
    const early61 = await invoke(alice, post(), [root], { nbf: NOW_S + 61 })
    refused(
      await authority.verifyAuthority({ ucan: early61, ...post() }),
      'MESH_CLOCK_SKEW',
      'ucan',
      'not-yet-valid',
    )
    const grant = await delegate(alice, dave.did, [post()], [root], { nbf: NOW_S + 61 })
    refused(
      await authority.verifyAuthority({ ucan: await invoke(dave, post(), [grant]), ...post() }),
      'MESH_CLOCK_SKEW',
      'ucan',
      'not-yet-valid',
    )
    passed(
      await authority.verifyAuthority({
        ucan: await invoke(alice, post(), [root], { nbf: NOW_S + 60 }),
        ...post(),
      }),
    )
  })

  it('a delegation without exp', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(alice, dave.did, [post()], [root], { exp: Number.POSITIVE_INFINITY })
    refused(
      await authority.verifyAuthority({ ucan: await invoke(dave, post(), [grant]), ...post() }),
      'MESH_UCAN_INVALID',
      'ucan',
      'no-expiry',
    )
  })

  it('an invocation that lives longer than the replay window allows', async (t) => {
    const { authority, root } = await startMesh(t)
    const ucan = await invoke(alice, post(), [root], { exp: NOW_S + 8 * 24 * HOUR })
    refused(await authority.verifyAuthority({ ucan, ...post() }), 'MESH_UCAN_INVALID', 'ucan', 'lifetime')
  })

  it('wrong audience: an invocation addressed to another mesh', async (t) => {
    const { authority, root } = await startMesh(t)
    const ucan = await invoke(alice, post(), [root], { audience: beta.did })
    refused(await authority.verifyAuthority({ ucan, ...post() }), 'MESH_UCAN_INVALID', 'ucan', 'audience')
  })

  it('replay before a restart', async (t) => {
    const { authority, root } = await startMesh(t)
    const ucan = await invoke(alice, post(), [root])
    passed(await authority.verifyAuthority({ ucan, ...post() }))
    refused(await authority.verifyAuthority({ ucan, ...post() }), 'MESH_REPLAY', 'ucan', 'replay')
  })

  it('replay after a restart (store closed and reopened)', async (t) => {
    const store = await tempStore(t)
    const first = await startMesh(t, { store })
    const ucan = await invoke(alice, post(), [first.root])
    passed(await first.authority.verifyAuthority({ ucan, ...post() }))
    const second = await restartMesh(t, first)
    assert.equal(
      second.root.cid.toString(),
      first.root.cid.toString(),
      'the root delegation survives the restart',
    )
    refused(await second.authority.verifyAuthority({ ucan, ...post() }), 'MESH_REPLAY', 'ucan', 'replay')
    passed(
      await second.authority.verifyAuthority({ ucan: await invoke(alice, post(), [second.root]), ...post() }),
    )
  })

  it('two copies of one invocation at once: only one passes', async (t) => {
    const { authority, root } = await startMesh(t)
    const ucan = await invoke(alice, post(), [root])
    const verdicts = await Promise.all([
      authority.verifyAuthority({ ucan, ...post() }),
      authority.verifyAuthority({ ucan, ...post() }),
    ])
    assert.equal(verdicts.filter((v) => v.ok).length, 1)
    refused(verdicts.find((v) => v.error) as AuthorityVerdict, 'MESH_REPLAY', 'ucan')
  })

  it('rights escalation: a holder of one room re-delegates the whole mesh', async (t) => {
    const { authority, root } = await startMesh(t)
    await authority.enrollMember(bob.did, { kind: 'human', role: 'user', tier: 2 })
    const narrow = await delegate(alice, bob.did, [post('lobby')], [root])
    const wide = await delegate(bob, dave.did, [{ can: 'room/post', with: service.did }], [narrow])
    const ucan = await invoke(dave, post('vault'), [wide])
    refused(
      await authority.verifyAuthority({ ucan, ...post('vault') }),
      'MESH_UCAN_INVALID',
      'ucan',
      'escalation',
    )
  })

  it('rights escalation: read-only holder posts', async (t) => {
    const { authority, root } = await startMesh(t)
    const read = await delegate(alice, dave.did, [{ can: 'room/read', with: room() }], [root])
    refused(
      await authority.verifyAuthority({ ucan: await invoke(dave, post(), [read]), ...post() }),
      'MESH_UCAN_INVALID',
      'ucan',
      'unrelated',
    )
  })

  it('caveat widening: a connect grant for beta used for another peer', async (t) => {
    const { authority, root } = await startMesh(t)
    await authority.enrollMember(bob.did, { kind: 'human', role: 'user', tier: 2 })
    const grant = await delegate(
      alice,
      bob.did,
      [{ can: 'mesh/connect', with: service.did, nb: { peer: beta.did } }],
      [root],
    )
    const ucan = await invoke(bob, { can: 'mesh/connect', with: service.did, nb: { peer: evil.did } }, [
      grant,
    ])
    refused(await verifyConnect(authority, ucan, evil.did), 'MESH_UCAN_INVALID', 'ucan', 'escalation')
    // and a delegation may not drop the caveat either
    const widened = await delegate(bob, dave.did, [{ can: 'mesh/connect', with: service.did }], [grant])
    const again = await invoke(dave, { can: 'mesh/connect', with: service.did, nb: { peer: evil.did } }, [
      widened,
    ])
    refused(await verifyConnect(authority, again, evil.did), 'MESH_UCAN_INVALID', 'ucan', 'escalation')
  })

  it('trust/promote caveat: a delegation limited to tier 3 cannot grant tier 2', async (t) => {
    const { authority, root } = await startMesh(t)
    await authority.enrollMember(bob.did, { kind: 'human', role: 'user', tier: 2 })
    const grant = await delegate(
      alice,
      bob.did,
      [{ can: 'trust/promote', with: service.did, nb: { tier: 3 } }],
      [root],
    )
    const ucan = await invoke(
      bob,
      { can: 'trust/promote', with: service.did, nb: { subject: dave.did, tier: 2, reason: 'x' } },
      [grant],
    )
    await assert.rejects(authority.promote(ucan, dave.did), { code: 'MESH_UCAN_INVALID' })
  })

  it('a capability for another resource than the one acted on', async (t) => {
    const { authority, root } = await startMesh(t)
    const ucan = await invoke(alice, post('other'), [root])
    refused(
      await authority.verifyAuthority({ ucan, ...post('lobby') }),
      'MESH_UCAN_INVALID',
      'ucan',
      'capability',
    )
    const act = await invoke(alice, { can: 'mesh/connect', with: service.did, nb: { peer: beta.did } }, [
      root,
    ])
    refused(await verifyConnect(authority, act, evil.did), 'MESH_UCAN_INVALID', 'ucan', 'capability')
  })

  it('an invocation claiming two capabilities', async (t) => {
    const { authority, root } = await startMesh(t)
    const inv = await issueDelegation({
      issuer: alice,
      audience: service.did,
      capabilities: [post(), { can: 'room/read', with: room() }],
      proofs: [root],
      expiration: NOW_S + 600,
    })
    refused(
      await authority.verifyAuthority({ ucan: await encodeToken(inv), ...post() }),
      'MESH_UCAN_INVALID',
      'ucan',
      'capability',
    )
  })

  it('revoked proof fails, an unrevoked alternative path still passes', async (t) => {
    const { authority, root } = await startMesh(t)
    const first = await delegate(alice, dave.did, [post()], [root])
    const second = await delegate(alice, dave.did, [post()], [root], { exp: NOW_S + 2 * HOUR })
    const revoke = await invoke(alice, { can: 'ucan/revoke', with: service.did, nb: { ucan: first.cid } }, [
      root,
    ])
    await authority.revoke(revoke)
    refused(
      await authority.verifyAuthority({ ucan: await invoke(dave, post(), [first]), ...post() }),
      'MESH_UCAN_INVALID',
      'ucan',
      'revoked',
    )
    const ok = passed(
      await authority.verifyAuthority({ ucan: await invoke(dave, post(), [first, second]), ...post() }),
    )
    assert.equal(ok.chain[1], second.cid.toString())
  })

  it('revocation needs ucan/revoke authority: mallory cannot revoke', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(alice, dave.did, [post()], [root])
    const revoke = await invoke(mallory, { can: 'ucan/revoke', with: service.did, nb: { ucan: grant.cid } }, [
      root,
    ])
    await assert.rejects(authority.revoke(revoke), { code: 'MESH_UCAN_INVALID' })
    passed(await authority.verifyAuthority({ ucan: await invoke(dave, post(), [grant]), ...post() }))
  })

  it('over-depth chain: 9 delegations refused, 8 pass', async (t) => {
    const { authority, root } = await startMesh(t)
    const humans = [bob, carol, dave, mallory, evil, beta]
    for (const h of humans) await authority.enrollMember(h.did, { kind: 'human', role: 'user', tier: 2 })
    const chainOf = async (n: number) => {
      // root (1) + alice→… (n − 1)
      let proof = root
      let holder = alice
      const keys = [bob, carol, dave, mallory, evil, beta, bob, carol, dave]
      for (let i = 0; i < n - 1; i++) {
        const next = keys[i] as typeof alice
        proof = await delegate(holder, next.did, [post()], [proof])
        holder = next
      }
      return invoke(holder, post(), [proof])
    }
    passed(await authority.verifyAuthority({ ucan: await chainOf(8), ...post() }))
    refused(
      await authority.verifyAuthority({ ucan: await chainOf(9), ...post() }),
      'MESH_UCAN_INVALID',
      'ucan',
      'depth',
    )
  })

  it('a chain without a human: mesh key straight to an agent', async (t) => {
    const { authority } = await startMesh(t)
    await authority.enrollMember(bob.did, { kind: 'agent', role: 'bot', tier: 2 })
    const grant = await delegate(service, bob.did, [{ can: 'mesh/connect', with: service.did }])
    const ucan = await invoke(bob, { can: 'mesh/connect', with: service.did, nb: { peer: beta.did } }, [
      grant,
    ])
    refused(await verifyConnect(authority, ucan, beta.did), 'MESH_NOT_HUMAN_SIGNED', 'ucan', 'no-human')
  })

  it('a chain of mesh keys and agents across meshes (beta promoted) is still not human-signed', async (t) => {
    const { authority, root } = await startMesh(t)
    const promote = await invoke(
      alice,
      { can: 'trust/promote', with: service.did, nb: { subject: beta.did, tier: 2, reason: 'partner' } },
      [root],
    )
    await authority.promote(promote, beta.did)
    const toBeta = await delegate(service, beta.did, [post()])
    const toDave = await delegate(beta, dave.did, [post()], [toBeta])
    const ucan = await invoke(dave, post(), [toDave])
    refused(
      await authority.verifyAuthority({
        ucan,
        ...post(),
        credentials: [await betaMembership(dave, 'agent', 'bot', 4)],
      }),
      'MESH_NOT_HUMAN_SIGNED',
      'ucan',
    )
  })

  it('a human whose home mesh is not believed does not count', async (t) => {
    const { authority, root } = await startMesh(t, {
      init: { acceptMembershipIssuer: (mesh) => mesh !== evil.did },
    })
    const promote = await invoke(
      alice,
      { can: 'trust/promote', with: service.did, nb: { subject: mallory.did, tier: 2, reason: 'test' } },
      [root],
    )
    await authority.promote(promote, mallory.did)
    const toMallory = await delegate(service, mallory.did, [post()])
    const toBot = await delegate(mallory, dave.did, [post()], [toMallory])
    const fake = await issueMembershipCredential(
      evil,
      { id: mallory.did, kind: 'human', role: 'architect', tier: 1, mesh: evil.did, meshName: 'evil' },
      { now: NOW },
    )
    refused(
      await authority.verifyAuthority({
        ucan: await invoke(dave, post(), [toBot]),
        ...post(),
        credentials: [fake],
      }),
      'MESH_NOT_HUMAN_SIGNED',
      'ucan',
    )
  })

  it('tier 3 re-delegating', async (t) => {
    const { authority, root } = await startMesh(t)
    await authority.enrollMember(bob.did, { kind: 'human', role: 'user', tier: 3 })
    const toBob = await delegate(alice, bob.did, [post()], [root])
    const toDave = await delegate(bob, dave.did, [post()], [toBob])
    refused(
      await authority.verifyAuthority({ ucan: await invoke(dave, post(), [toDave]), ...post() }),
      'MESH_TIER_FORBIDDEN',
      'ucan',
      'redelegation',
    )
    // bob himself may still act on it
    passed(await authority.verifyAuthority({ ucan: await invoke(bob, post(), [toBob]), ...post() }))
  })

  it('tier 4 promoting', async (t) => {
    const { authority, root } = await startMesh(t)
    await authority.enrollMember(bob.did, { kind: 'human', role: 'user', tier: 4 })
    const grant = await delegate(alice, bob.did, [{ can: 'trust/promote', with: service.did }], [root])
    const ucan = await invoke(
      bob,
      { can: 'trust/promote', with: service.did, nb: { subject: dave.did, tier: 3, reason: 'friend' } },
      [grant],
    )
    await assert.rejects(authority.promote(ucan, dave.did), { code: 'MESH_TIER_FORBIDDEN' })
    assert.equal(authority.trust.tierOf(dave.did), 4)
  })

  it('tier 4 inviting', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(alice, dave.did, [{ can: 'room/invite', with: room() }], [root])
    const ucan = await invoke(dave, { can: 'room/invite', with: room(), nb: { invitee: mallory.did } }, [
      grant,
    ])
    refused(
      await authority.verifyAuthority({
        ucan,
        can: 'room/invite',
        with: room(),
        nb: { invitee: mallory.did },
      }),
      'MESH_TIER_FORBIDDEN',
      'ucan',
      'participation',
    )
  })

  it('a tier 3 local human cannot grant tier 2', async (t) => {
    const { authority, root } = await startMesh(t)
    await authority.enrollMember(bob.did, { kind: 'human', role: 'user', tier: 3 })
    const grant = await delegate(alice, bob.did, [{ can: 'trust/promote', with: service.did }], [root])
    const ucan = await invoke(
      bob,
      { can: 'trust/promote', with: service.did, nb: { subject: dave.did, tier: 2, reason: 'x' } },
      [grant],
    )
    await assert.rejects(
      authority.promote(ucan, dave.did),
      (err: { code: string; details: { reason: string } }) =>
        err.code === 'MESH_TIER_FORBIDDEN' && err.details.reason === 'grant',
    )
  })

  it('a local agent (tier 2) cannot promote: not a human', async (t) => {
    const { authority, root } = await startMesh(t)
    await authority.enrollMember(bob.did, { kind: 'agent', role: 'bot', tier: 2 })
    const grant = await delegate(alice, bob.did, [{ can: 'trust/promote', with: service.did }], [root])
    const ucan = await invoke(
      bob,
      { can: 'trust/promote', with: service.did, nb: { subject: dave.did, tier: 3, reason: 'x' } },
      [grant],
    )
    await assert.rejects(authority.promote(ucan, dave.did), { code: 'MESH_NOT_HUMAN_SIGNED' })
  })

  it('a foreign architect acting as tier 1 is tier 4 here', async (t) => {
    const { authority, root } = await startMesh(t)
    const carolCredential = await betaMembership(carol, 'human', 'architect', 1)
    const grant = await delegate(
      alice,
      carol.did,
      [
        { can: 'trust/promote', with: service.did },
        { can: 'mesh/connect', with: service.did },
      ],
      [root],
    )
    const promote = await invoke(
      carol,
      { can: 'trust/promote', with: service.did, nb: { subject: dave.did, tier: 2, reason: 'mine' } },
      [grant],
    )
    await assert.rejects(authority.promote(promote, dave.did, { credentials: [carolCredential] }), {
      code: 'MESH_TIER_FORBIDDEN',
    })
    const connect = await invoke(carol, { can: 'mesh/connect', with: service.did, nb: { peer: evil.did } }, [
      grant,
    ])
    refused(
      await authority.verifyAct(connect, {
        audience: service.did,
        capability: 'mesh/connect',
        subject: evil.did,
        credentials: [carolCredential],
      }),
      'MESH_TIER_FORBIDDEN',
      'ucan',
    )
    assert.equal(authority.trust.tierOf(carol.did), 4)
    // and her own mesh's key is no authority here
    const ownRoot = await delegate(beta, carol.did, [{ can: '*', with: service.did }])
    refused(
      await authority.verifyAuthority({ ucan: await invoke(carol, post(), [ownRoot]), ...post() }),
      'MESH_UCAN_INVALID',
      'ucan',
    )
  })

  it('forged signature on a middle link (issuer alice, signed by mallory)', async (t) => {
    const { authority, root } = await startMesh(t)
    await authority.enrollMember(bob.did, { kind: 'human', role: 'user', tier: 2 })
    const forgedAlice = new NodeEd25519Signer(mallory).withDID(alice.did as API.DID)
    const forged = await ucantoDelegate({
      issuer: forgedAlice as never,
      audience: { did: () => bob.did as API.DID },
      capabilities: [post()] as never,
      proofs: [root],
      expiration: NOW_S + HOUR,
    })
    const toDave = await delegate(bob, dave.did, [post()], [forged])
    refused(
      await authority.verifyAuthority({ ucan: await invoke(dave, post(), [toDave]), ...post() }),
      'MESH_SIGNATURE_MISMATCH',
      'ucan',
      'signature',
    )
  })

  it('mallory re-issues alice’s delegation as her own: not aligned with its proof', async (t) => {
    const { authority, root } = await startMesh(t)
    const stolen = await delegate(mallory, mallory.did, [post()], [root])
    refused(
      await authority.verifyAuthority({ ucan: await invoke(mallory, post(), [stolen]), ...post() }),
      'MESH_UCAN_INVALID',
      'ucan',
      'alignment',
    )
  })

  it('an invocation not signed by its claimed issuer fails the DID proof', async (t) => {
    const { authority, root } = await startMesh(t)
    const inv = await ucantoDelegate({
      issuer: new NodeEd25519Signer(mallory).withDID(alice.did as API.DID) as never,
      audience: { did: () => service.did as API.DID },
      capabilities: [post()] as never,
      proofs: [root],
      expiration: NOW_S + 600,
    })
    const verdict = await authority.verifyAuthority({ ucan: await encodeToken(inv), ...post() })
    refused(verdict, 'MESH_SIGNATURE_MISMATCH', 'did')
    assert.deepEqual(
      verdict.error?.failed?.map((f) => f.proof),
      ['did'],
      'the chain and credentials are fine',
    )
  })

  it('audience swap: a delegation to carol presented by dave', async (t) => {
    const { authority, root } = await startMesh(t)
    const toCarol = await delegate(alice, carol.did, [post()], [root])
    refused(
      await authority.verifyAuthority({ ucan: await invoke(dave, post(), [toCarol]), ...post() }),
      'MESH_UCAN_INVALID',
      'ucan',
      'alignment',
    )
  })

  it('a proof that is neither embedded nor known', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(alice, dave.did, [post()], [root])
    refused(
      await authority.verifyAuthority({ ucan: await invoke(dave, post(), [grant.cid]), ...post() }),
      'MESH_UCAN_INVALID',
      'ucan',
      'unavailable',
    )
  })

  it('a block whose bytes do not hash to its CID (cache poisoning) is refused at decode', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(alice, dave.did, [post('lobby')], [root])
    const good = await invoke(dave, post(), [grant])
    passed(await authority.verifyAuthority({ ucan: good, ...post() }))
    // same CIDs, altered bytes in the grant block
    const bytes = Buffer.from(good, 'base64url')
    const target = Buffer.from(grant.bytes)
    const at = bytes.indexOf(target)
    assert.ok(at > 0)
    const inner = target.indexOf(Buffer.from('lobby'))
    bytes.write('vault', at + inner)
    const tampered = bytes.toString('base64url')
    refused(
      await authority.verifyAuthority({ ucan: tampered, ...post('vault') }),
      'MESH_UCAN_INVALID',
      'ucan',
      'malformed',
    )
  })

  it('garbage tokens', async (t) => {
    const { authority } = await startMesh(t)
    for (const ucan of [
      '',
      'not base64!',
      Buffer.from('{"act":"x"}').toString('base64url'),
      'A'.repeat(200_000),
    ]) {
      refused(await authority.verifyAuthority({ ucan, ...post() }), 'MESH_UCAN_INVALID', 'ucan', 'malformed')
    }
  })

  it('mallory: refused for every capability when holding bob’s delegation', async (t) => {
    const { authority, root } = await startMesh(t)
    await authority.enrollMember(bob.did, { kind: 'human', role: 'user', tier: 2 })
    const toBob = await delegate(alice, bob.did, [{ can: '*', with: service.did }], [root])
    for (const can of Object.keys(CAPABILITIES)) {
      const resource = can.startsWith('room/')
        ? room()
        : can === 'agent/invoke'
          ? `${service.did}/agents/echo`
          : service.did
      const nb = can === 'ucan/revoke' ? { ucan: root.cid } : {}
      const ucan = await invoke(mallory, { can, with: resource, nb }, [toBob])
      refused(
        await authority.verifyAuthority({ ucan, can, with: resource }),
        'MESH_UCAN_INVALID',
        'ucan',
        'alignment',
      )
    }
  })
})
