import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type * as API from '@ucanto/interface'
import type { FederationPolicy, IssuedDelegationView, RevocationView } from '../../src/api/index.ts'
import { alice, dave, delegate, mallory, room, service, startMesh } from '../auth/authority-fixtures.ts'

// The console's issue-13 code (browser code, run here on Node): paused links, the history
// limit and the policy PATCH it sends, delegations and revocations, and the acts it signs.
const ui = (path: string) => new URL(`../../src/ui/src/lib/${path}`, import.meta.url).href
const lifecycle = (await import(ui('lifecycle.ts'))) as typeof import('../../src/ui/src/lib/lifecycle.ts')
const humanKey = (await import(ui('human-key.ts'))) as {
  keyFromSeed(seed: Uint8Array, name: string): Promise<unknown>
}
const ucan = (await import(ui('ucan.ts'))) as {
  decodeToken(token: string): Promise<API.Delegation>
  signAct(
    key: unknown,
    meshDid: string,
    act: Record<string, unknown>,
    proofs: API.Delegation[],
  ): Promise<string>
}

const POLICY: FederationPolicy = {
  mode: 'open',
  allow: [],
  deny: [mallory.did],
  autoAccept: false,
  maxForeignParticipantsPerRoom: 50,
  maxBackfillEventsPerRequest: 500,
  backfillLimit: null,
  autoAcceptRooms: false,
}

function delegation(over: Partial<IssuedDelegationView> = {}): IssuedDelegationView {
  return {
    cid: 'bafyreib4pff766vhpbxbhjbqqnsh5emeznvujayjj4z2iu533cprgbz23m',
    issuer: alice.did,
    audience: dave.did,
    capabilities: [{ can: 'room/post', with: `${service.did}/rooms/lobby` }],
    exp: null,
    recordedAt: '2026-01-01T00:00:00.000Z',
    recordedBy: alice.did,
    token: 'x',
    revoked: null,
    ...over,
  }
}

describe('the console’s lifecycle data (issue 13)', () => {
  it('offers Pause on a running accepted link, Resume on a paused one, Disconnect on both, nothing on others', () => {
    const offers = (status: string) => {
      const c = { status } as Parameters<typeof lifecycle.canPause>[0]
      return [lifecycle.canPause(c), lifecycle.canResume(c), lifecycle.canDisconnect(c)]
    }
    assert.deepEqual(offers('accepted'), [true, false, true])
    assert.deepEqual(offers('degraded'), [true, false, true])
    assert.deepEqual(offers('paused'), [false, true, true])
    for (const s of ['pending', 'declined', 'disconnected'])
      assert.deepEqual(offers(s), [false, false, false])
  })

  it('reads and writes backfillLimit: null is all, 0 only new, N the last N (at least 1)', () => {
    assert.equal(lifecycle.backfillChoiceOf(null), 'all')
    assert.equal(lifecycle.backfillChoiceOf(undefined), 'all')
    assert.equal(lifecycle.backfillChoiceOf(0), 'none')
    assert.equal(lifecycle.backfillChoiceOf(25), 'last')
    assert.equal(lifecycle.backfillLimitOf('all', 25), null)
    assert.equal(lifecycle.backfillLimitOf('none', 25), 0)
    assert.equal(lifecycle.backfillLimitOf('last', 25), 25)
    // A count that is no positive integer never becomes 0 (which would mean "only new") or garbage.
    for (const bad of [0, -3, 2.5, Number.NaN]) assert.equal(lifecycle.backfillLimitOf('last', bad), 1)
    assert.match(lifecycle.backfillText(null), /all history/)
    assert.match(lifecycle.backfillText(0), /only messages written after/)
    assert.match(lifecycle.backfillText(1), /last 1 entry/)
    assert.match(lifecycle.backfillText(25), /last 25 entries/)
  })

  it('a policy save sends only the changed fields; a list is sent whole; nothing changed is an empty patch', () => {
    assert.deepEqual(lifecycle.policyPatchOf(POLICY, { ...POLICY }), {})
    assert.deepEqual(lifecycle.policyPatchOf(POLICY, { ...POLICY, backfillLimit: 0 }), { backfillLimit: 0 })
    assert.deepEqual(lifecycle.policyPatchOf({ ...POLICY, backfillLimit: 0 }, POLICY), {
      backfillLimit: null,
    })
    assert.deepEqual(
      lifecycle.policyPatchOf(POLICY, { ...POLICY, deny: [mallory.did, dave.did], mode: 'allowlist' }),
      { mode: 'allowlist', deny: [mallory.did, dave.did] },
    )
    // Same items in a new array: unchanged.
    assert.deepEqual(lifecycle.policyPatchOf(POLICY, { ...POLICY, deny: [mallory.did] }), {})
  })

  it('a delegation is live, expired or revoked (revoked wins); Revoke is offered until it is revoked', () => {
    const now = 1_800_000_000
    const revoked: RevocationView = { cid: 'c', by: alice.did, reason: 'left', at: 't', invocation: 'i' }
    assert.equal(lifecycle.delegationState(delegation(), now), 'live')
    assert.equal(lifecycle.delegationState(delegation({ exp: now + 1 }), now), 'live')
    assert.equal(lifecycle.delegationState(delegation({ exp: now }), now), 'expired')
    assert.equal(lifecycle.delegationState(delegation({ exp: now - 10, revoked }), now), 'revoked')
    assert.equal(lifecycle.canRevoke(delegation()), true)
    assert.equal(lifecycle.canRevoke(delegation({ exp: now - 10 })), true)
    assert.equal(lifecycle.canRevoke(delegation({ revoked })), false)
    // A malformed CID from a hostile list is never offered for signing.
    assert.equal(lifecycle.canRevoke(delegation({ cid: 'not a cid' })), false)
    assert.equal(lifecycle.capabilitiesText(delegation()), `room/post on ${service.did}/rooms/lobby`)
    assert.equal(lifecycle.expiryText(null, now), 'never')
    assert.equal(lifecycle.expiryText(now + 30, now), 'in 30 s')
    assert.equal(lifecycle.expiryText(now + 24 * 3600 - 1, now), 'in 23 h')
    assert.equal(lifecycle.expiryText(now + 3 * 86400, now), 'in 3 d')
    assert.equal(lifecycle.expiryText(now - 300, now), 'expired 5 min ago')
    assert.equal(lifecycle.expiryText(now, now), 'expired 0 s ago')
  })

  it('tells this mesh’s revocations from its peers’, newest first', () => {
    const own = { at: '2026-01-02T00:00:00Z', mesh: service.did }
    const mine: { at: string; mesh?: string } = { at: '2026-01-01T00:00:00Z' }
    const peers = { at: '2026-01-03T00:00:00Z', mesh: mallory.did }
    assert.equal(lifecycle.revocationOrigin(own, service.did), 'own')
    assert.equal(lifecycle.revocationOrigin(mine, service.did), 'own')
    assert.equal(lifecycle.revocationOrigin(peers, service.did), 'peer')
    assert.deepEqual(lifecycle.sortRevocations([mine, own, peers], service.did), [peers, own, mine])
    const tie = { at: own.at, mesh: mallory.did }
    assert.deepEqual(lifecycle.sortRevocations([tie, own], service.did), [own, tie])
  })

  it('signs connection/pause|resume and ucan/revoke acts the node’s Authority carries out', async (t) => {
    const mesh = await startMesh(t)
    const root = mesh.authority.rootDelegation()?.token as string
    const proof = await ucan.decodeToken(root)
    const browser = await humanKey.keyFromSeed(Buffer.from(alice.seed), 'alice')
    for (const can of ['connection/pause', 'connection/resume']) {
      const token = await ucan.signAct(browser, service.did, { can, connection: 'conn-1' }, [proof])
      const ok = await mesh.authority.verifyAuthority(
        { ucan: token, can, with: service.did, nb: { connection: 'conn-1' } },
        { now: Date.now() },
      )
      assert.equal(ok.error, undefined, JSON.stringify(ok.error))
      const other = await mesh.authority.verifyAuthority(
        {
          ucan: await ucan.signAct(browser, service.did, { can, connection: 'conn-2' }, [proof]),
          can,
          with: service.did,
          nb: { connection: 'conn-1' },
        },
        { now: Date.now() },
      )
      assert.equal(other.error?.code, 'MESH_UCAN_INVALID')
    }

    const grant = await delegate(alice, dave.did, [{ can: 'room/post', with: room() }], [mesh.root])
    const cid = grant.cid.toString()
    assert.match(cid, lifecycle.CID_TEXT)
    const revoke = await ucan.signAct(
      browser,
      service.did,
      { can: 'ucan/revoke', ucan: cid, reason: 'left' },
      [proof],
    )
    const revocation = await mesh.authority.revoke(revoke)
    assert.equal(revocation.cid, cid)
    assert.equal(revocation.by, alice.did)
    assert.equal(revocation.reason, 'left')
    // Replayed: refused.
    await assert.rejects(
      mesh.authority.revoke(revoke),
      (err: { code?: string }) => err.code === 'MESH_REPLAY',
    )
  })
})
