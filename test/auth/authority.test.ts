import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { delegate as ucantoDelegate } from '@ucanto/core'
import type * as API from '@ucanto/interface'
import { access } from '@ucanto/validator'
import {
  Authority,
  encodeToken,
  issueMembershipCredential,
  issuePresentation,
  NodeEd25519Signer,
  parserOf,
  principalParser,
  ucantoVerifier,
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
  HOUR,
  invoke,
  mallory,
  NOW,
  NOW_S,
  passed,
  post,
  refused,
  room,
  service,
  startMesh,
  verifyConnect,
} from './authority-fixtures.ts'

describe('authority: positive cases, one per capability', () => {
  it('mesh/connect: the architect, on the root delegation', async (t) => {
    const { authority, root } = await startMesh(t)
    const ucan = await invoke(alice, { can: 'mesh/connect', with: service.did, nb: { peer: beta.did } }, [
      root,
    ])
    const ok = passed(await verifyConnect(authority, ucan, beta.did))
    assert.equal(ok.issuer, alice.did)
    assert.equal(ok.tier, 1)
    assert.equal(ok.humanInChain, alice.did)
    assert.deepEqual(ok.issuers, [alice.did, service.did])
  })

  it('mesh/connect: the root delegation may travel as a link only (known locally)', async (t) => {
    const { authority, root } = await startMesh(t)
    const ucan = await invoke(alice, { can: 'mesh/connect', with: service.did, nb: { peer: beta.did } }, [
      root.cid,
    ])
    passed(await verifyConnect(authority, ucan, beta.did))
  })

  it('connection/accept, decline, disconnect through verifyAct', async (t) => {
    const { authority, root } = await startMesh(t)
    for (const can of ['connection/accept', 'connection/decline', 'connection/disconnect']) {
      const ucan = await invoke(alice, { can, with: service.did, nb: { connection: 'c-1' } }, [root])
      passed(await authority.verifyAct(ucan, { audience: service.did, capability: can, subject: 'c-1' }))
    }
  })

  it('room/share and room/invite: a local tier-2 human on the architect’s delegation', async (t) => {
    const { authority, root } = await startMesh(t)
    const bobCredential = await authority.enrollMember(bob.did, { kind: 'human', role: 'user', tier: 2 })
    assert.match(bobCredential, /^ey/)
    const grant = await delegate(alice, bob.did, [{ can: 'room/*', with: room() }], [root])
    const share = await invoke(bob, { can: 'room/share', with: room(), nb: { peer: beta.did } }, [grant])
    const ok = passed(
      await authority.verifyAuthority({
        ucan: share,
        can: 'room/share',
        with: room(),
        nb: { peer: beta.did },
      }),
    )
    assert.equal(ok.tier, 2)
    assert.equal(ok.humanInChain, bob.did)
    const invite = await invoke(bob, { can: 'room/invite', with: room(), nb: { invitee: dave.did } }, [grant])
    passed(
      await authority.verifyAuthority({
        ucan: invite,
        can: 'room/invite',
        with: room(),
        nb: { invitee: dave.did },
      }),
    )
  })

  it('room/read and room/post: a foreign agent (tier 4) on a human-signed delegation', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(
      alice,
      dave.did,
      [
        { can: 'room/read', with: room() },
        { can: 'room/post', with: room() },
      ],
      [root],
    )
    for (const can of ['room/read', 'room/post']) {
      const ucan = await invoke(dave, { can, with: room() }, [grant])
      const ok = passed(await authority.verifyAuthority({ ucan, can, with: room() }))
      assert.equal(ok.tier, 4)
      assert.equal(ok.humanInChain, alice.did)
    }
  })

  it('agent/invoke: a foreign agent promoted to tier 3 by the architect', async (t) => {
    const { authority, root } = await startMesh(t)
    const agent = `${service.did}/agents/echo`
    const grant = await delegate(
      alice,
      dave.did,
      [{ can: 'agent/invoke', with: agent, nb: { ability: 'echo' } }],
      [root],
    )
    const call = () =>
      invoke(dave, { can: 'agent/invoke', with: agent, nb: { ability: 'echo', input: 'hi' } }, [grant])
    refused(
      await authority.verifyAuthority({
        ucan: await call(),
        can: 'agent/invoke',
        with: agent,
        nb: { ability: 'echo' },
      }),
      'MESH_TIER_FORBIDDEN',
      'ucan',
      'participation',
    )
    const promotion = await invoke(
      alice,
      { can: 'trust/promote', with: service.did, nb: { subject: dave.did, tier: 3, reason: 'good peer' } },
      [root],
    )
    const record = await authority.promote(promotion, dave.did)
    assert.equal(record.tier, 3)
    const ok = passed(
      await authority.verifyAuthority({
        ucan: await call(),
        can: 'agent/invoke',
        with: agent,
        nb: { ability: 'echo' },
      }),
    )
    assert.equal(ok.capability.nb.input, 'hi')
    assert.equal(ok.tier, 3)
  })

  it('ucan/revoke: the architect revokes a delegation', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(alice, dave.did, [{ can: 'room/post', with: room() }], [root])
    const revoke = await invoke(
      alice,
      { can: 'ucan/revoke', with: service.did, nb: { ucan: grant.cid, reason: 'left' } },
      [root],
    )
    const revocation = await authority.revoke(revoke)
    assert.equal(revocation.cid, grant.cid.toString())
    assert.equal(revocation.by, alice.did)
    refused(
      await authority.verifyAuthority({ ucan: await invoke(dave, post(), [grant]), ...post() }),
      'MESH_UCAN_INVALID',
      'ucan',
      'revoked',
    )
  })

  it('a chain verified by this module is also valid for stock ucanto (same data, fast principal)', async (t) => {
    const { root } = await startMesh(t)
    const grant = await delegate(alice, dave.did, [{ can: 'room/post', with: room() }], [root])
    const inv = await issueDelegation({
      issuer: dave,
      audience: service.did,
      capabilities: [post()],
      proofs: [grant],
      expiration: NOW_S + 600,
    })
    const result = await access(
      inv as never,
      {
        capability: parserOf('room/post'),
        authority: ucantoVerifier(service.did),
        principal: principalParser,
        validateAuthorization: () => ({ ok: {} }),
      } as never,
    )
    assert.equal(result.error, undefined, result.error?.message ?? '')
  })
})

describe('authority: credentials inside a request (the vc proof)', () => {
  it('a presentation hiding one bad credential fails and names it', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(alice, dave.did, [post()], [root])
    const good = await betaMembership(dave, 'agent', 'bot', 4)
    const expired = await issueMembershipCredential(
      beta,
      { id: carol.did, kind: 'human', role: 'architect', tier: 1, mesh: beta.did, meshName: 'beta' },
      { now: NOW - 2 * 24 * HOUR * 1000, ttlSeconds: 3600 },
    )
    const presentation = await issuePresentation(dave, [good, expired], { audience: service.did, now: NOW })
    const verdict = await authority.verifyAuthority({
      ucan: await invoke(dave, post(), [grant]),
      ...post(),
      presentation,
    })
    refused(verdict, 'MESH_VC_INVALID', 'vc')
    assert.equal(verdict.error?.details.index, 1)
    assert.match(verdict.error?.message ?? '', /credential 1/)
    const clean = await issuePresentation(dave, [good], { audience: service.did, now: NOW })
    passed(
      await authority.verifyAuthority({
        ucan: await invoke(dave, post(), [grant]),
        ...post(),
        presentation: clean,
      }),
    )
  })

  it('a presentation held by someone else than the invoker, or for another mesh', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(alice, dave.did, [post()], [root])
    const good = await betaMembership(dave, 'agent', 'bot', 4)
    const byMallory = await issuePresentation(mallory, [good], { audience: service.did, now: NOW })
    refused(
      await authority.verifyAuthority({
        ucan: await invoke(dave, post(), [grant]),
        ...post(),
        presentation: byMallory,
      }),
      'MESH_VC_INVALID',
      'vc',
    )
    const elsewhere = await issuePresentation(dave, [good], { audience: beta.did, now: NOW })
    refused(
      await authority.verifyAuthority({
        ucan: await invoke(dave, post(), [grant]),
        ...post(),
        presentation: elsewhere,
      }),
      'MESH_VC_INVALID',
      'vc',
    )
  })

  it('a credential with a forged issuer in the request', async (t) => {
    const { authority, root } = await startMesh(t)
    const grant = await delegate(alice, dave.did, [post()], [root])
    const good = await betaMembership(dave, 'agent', 'bot', 4)
    const [h, , s] = good.split('.')
    const payload = JSON.parse(Buffer.from(good.split('.')[1] as string, 'base64url').toString())
    payload.vc.credentialSubject.kind = 'human'
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`
    const verdict = await authority.verifyAuthority({
      ucan: await invoke(dave, post(), [grant]),
      ...post(),
      credentials: [forged],
    })
    refused(verdict, 'MESH_VC_INVALID', 'vc', 'signature')
    assert.equal(verdict.error?.details.index, 0)
  })

  it('verdicts list every failed proof, in the order did, vc, ucan', async (t) => {
    const { authority } = await startMesh(t)
    const inv = await ucantoDelegate({
      issuer: new NodeEd25519Signer(mallory).withDID(alice.did as API.DID) as never,
      audience: { did: () => service.did as API.DID },
      capabilities: [post()] as never,
      expiration: NOW_S + 600,
    })
    const verdict = await authority.verifyAuthority({
      ucan: await encodeToken(inv),
      ...post(),
      credentials: ['x.y.z'],
    })
    assert.deepEqual(
      verdict.error?.failed?.map((f) => f.proof),
      ['did', 'vc', 'ucan'],
    )
  })
})

describe('authority: restart and root delegation', () => {
  it('is refused by a fresh Authority that was not started', async (t) => {
    const store = await tempStore(t)
    const { AuditLog } = await import('../../src/audit/index.ts')
    const audit = new AuditLog({ store, key: service })
    await audit.start()
    t.after(() => audit.stop())
    const authority = new Authority({ store, audit, meshKey: service, meshName: 'alpha' })
    await assert.rejects(authority.verifyAuthority({ ucan: 'x', ...post() }), /start/)
  })

  it('re-issues the root delegation for a new architect and audits it', async (t) => {
    const mesh = await startMesh(t)
    const first = mesh.authority.rootDelegation()
    const next = await mesh.authority.ensureRootDelegation(bob.did)
    assert.notEqual(next.cid, first?.cid)
    const page = await mesh.audit.list({ limit: 50 })
    const actions = page.entries.map((r) => r.action)
    assert.ok(actions.includes('authority.root-delegated'))
  })
})
