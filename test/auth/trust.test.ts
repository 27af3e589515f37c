import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { tempStore } from '../fixtures/principals.ts'
import {
  alice,
  beta,
  bob,
  dave,
  delegate,
  invoke,
  mallory,
  restartMesh,
  room,
  service,
  startMesh,
} from './authority-fixtures.ts'

const promoteAct = (subject: string, tier: number, reason: string) => ({
  can: 'trust/promote',
  with: service.did,
  nb: { subject, tier, reason },
})

describe('trust: tiers and reputation', () => {
  it('foreign principals start at 4, the architect is 1, the mesh key is 1', async (t) => {
    const { authority } = await startMesh(t)
    assert.equal(authority.trust.tierOf(dave.did), 4)
    assert.equal(authority.trust.tierOf(alice.did), 1)
    assert.equal(authority.trust.tierOf(service.did), 1)
    assert.equal(authority.trust.get(alice.did)?.local, true)
    assert.equal(authority.trust.get(dave.did), undefined)
  })

  it('reputation is computed from accepted and refused interactions, per principal and per peer mesh', async (t) => {
    const { authority } = await startMesh(t)
    for (let i = 0; i < 3; i++)
      await authority.trust.recordInteraction(dave.did, 'accepted', 'room/post', { mesh: beta.did })
    const record = await authority.trust.recordInteraction(dave.did, 'refused', 'MESH_UPDATE_REJECTED', {
      mesh: beta.did,
    })
    assert.equal(record.accepted, 3)
    assert.equal(record.refused, 1)
    assert.equal(record.score, Math.round((4 / 6) * 1000) / 1000)
    assert.equal(record.mesh, beta.did)
    const meshRecord = authority.trust.get(beta.did, 'mesh')
    assert.equal(meshRecord?.accepted, 3)
    assert.equal(meshRecord?.refused, 1)
    assert.deepEqual(
      authority.trust.list().map((r) => [r.scope, r.did]),
      [
        ['principal', alice.did],
        ['principal', dave.did],
        ['mesh', beta.did],
      ].sort((a, b) =>
        a[0] === b[0] ? (a[1] as string).localeCompare(b[1] as string) : a[0] === 'principal' ? -1 : 1,
      ),
    )
  })

  it('promotion by the architect with a reason, then automatic demotion after violations — all audited', async (t) => {
    const { authority, root, audit, clock } = await startMesh(t)
    const promoted = await authority.promote(
      await invoke(alice, promoteAct(dave.did, 2, 'trusted partner agent'), [root]),
      dave.did,
    )
    assert.equal(promoted.tier, 2)
    assert.equal(promoted.tierChangedBy, alice.did)
    assert.equal(promoted.tierReason, 'trusted partner agent')
    for (let i = 0; i < 4; i++) {
      clock.now += 1000
      await authority.trust.recordInteraction(dave.did, 'refused', 'MESH_UPDATE_REJECTED')
    }
    assert.equal(authority.trust.tierOf(dave.did), 2, 'four refusals are below the threshold')
    await authority.trust.recordInteraction(dave.did, 'refused', 'MESH_UPDATE_REJECTED')
    assert.equal(authority.trust.tierOf(dave.did), 4, 'the fifth demotes at once')
    assert.equal(authority.trust.get(dave.did)?.tierReason, 'violations')
    const actions = (await audit.list({ limit: 100 })).entries.map((r) => r.action)
    assert.ok(actions.includes('trust.promoted'))
    assert.equal(actions.filter((a) => a === 'trust.refused').length, 5)
    assert.equal(actions.filter((a) => a === 'trust.demoted').length, 1)
    assert.ok((await audit.verify()).ok)
  })

  it('refusals spread beyond the window do not demote', async (t) => {
    const { authority, root, clock } = await startMesh(t, {
      init: { trust: { violationThreshold: 3, violationWindowMs: 10_000 } },
    })
    await authority.promote(await invoke(alice, promoteAct(dave.did, 3, 'ok'), [root]), dave.did)
    for (let i = 0; i < 6; i++) {
      clock.now += 6_000
      await authority.trust.recordInteraction(dave.did, 'refused', 'slow')
    }
    assert.equal(authority.trust.tierOf(dave.did), 3)
  })

  it('a promotion without a reason is refused', async (t) => {
    const { authority, root } = await startMesh(t)
    const ucan = await invoke(
      alice,
      { can: 'trust/promote', with: service.did, nb: { subject: dave.did, tier: 2 } },
      [root],
    )
    await assert.rejects(authority.promote(ucan, dave.did), { code: 'MESH_BAD_REQUEST' })
  })

  it('a promotion for another subject than the one named is refused', async (t) => {
    const { authority, root } = await startMesh(t)
    const ucan = await invoke(alice, promoteAct(dave.did, 2, 'x'), [root])
    await assert.rejects(authority.promote(ucan, mallory.did), { code: 'MESH_UCAN_INVALID' })
  })

  it('a peer mesh can be promoted and demoted as a whole', async (t) => {
    const { authority, root } = await startMesh(t)
    const record = await authority.promote(
      await invoke(alice, promoteAct(beta.did, 2, 'partner mesh'), [root]),
      beta.did,
      { scope: 'mesh' },
    )
    assert.equal(record.scope, 'mesh')
    assert.equal(authority.trust.get(beta.did, 'mesh')?.tier, 2)
  })

  it('tiers and reputation survive a restart', async (t) => {
    const store = await tempStore(t)
    const first = await startMesh(t, { store })
    await first.authority.enrollMember(bob.did, { kind: 'human', role: 'user', tier: 2 })
    await first.authority.promote(await invoke(alice, promoteAct(dave.did, 3, 'ok'), [first.root]), dave.did)
    await first.authority.trust.recordInteraction(dave.did, 'refused', 'x')
    const second = await restartMesh(t, first)
    assert.equal(second.authority.trust.tierOf(dave.did), 3)
    assert.equal(second.authority.trust.get(dave.did)?.refused, 1)
    assert.equal(second.authority.trust.tierOf(bob.did), 2)
    assert.equal(second.authority.heldCredentials(bob.did).length, 1)
    // bob's held membership credential still makes him the human of his chains
    const grant = await delegate(service, bob.did, [{ can: 'room/post', with: room() }])
    const verdict = await second.authority.verifyAuthority({
      ucan: await invoke(bob, { can: 'room/post', with: room() }, [grant]),
      can: 'room/post',
      with: room(),
    })
    assert.equal(verdict.ok?.humanInChain, bob.did)
  })

  it('a human of this mesh at tier 1–2 is flagged, never demoted, by violations; an agent of it is demoted; a promotion clears the flag', async (t) => {
    const { authority, audit, root } = await startMesh(t, { init: { trust: { violationThreshold: 2 } } })
    const agent = dave
    await authority.enrollMember(bob.did, { kind: 'human', role: 'member', tier: 2 })
    await authority.enrollMember(agent.did, { kind: 'agent', role: 'agent', tier: 3 })
    for (const did of [alice.did, bob.did, agent.did]) {
      for (let i = 0; i < 2; i++)
        await authority.trust.recordInteraction(did, 'refused', 'room.update client-spoof')
    }
    for (const [did, tier] of [
      [alice.did, 1],
      [bob.did, 2],
    ] as const) {
      const record = authority.trust.get(did)
      assert.equal(record?.tier, tier)
      assert.equal(record?.flagged?.count, 1)
      assert.match(record?.flagged?.reason ?? '', /2 refusals/)
    }
    assert.equal(authority.trust.tierOf(agent.did), 4)
    assert.equal(authority.trust.get(agent.did)?.flagged, undefined)
    const rows = await audit.list({ action: 'trust.flagged' })
    assert.deepEqual(rows.entries.map((e) => e.subject).sort(), [alice.did, bob.did].sort())

    // A person looks at it and confirms bob's tier: the flag goes.
    const record = await authority.promote(
      await invoke(alice, promoteAct(bob.did, 2, 'looked into it: a squatted client id'), [root]),
      bob.did,
    )
    assert.equal(record.flagged, undefined)
    assert.equal(record.tier, 2)
  })
})
