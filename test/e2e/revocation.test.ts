import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { waitFor } from '../../scripts/lib/processes.ts'
import type { DelegationList } from '../../src/api/index.ts'
import { agentResourceOf } from '../../src/auth/authority/index.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import { connectCli, delegateToFile, e2e, type FixedPortMesh, fixedPortMeshes } from '../fixtures/e2e.ts'

type Mesh = FixedPortMesh

/** The room sync interval `fixedPortStart` gives each mesh. */
const SYNC_INTERVAL_MS = 300

describe('revocation across meshes, in separate processes (SPEC §9)', () => {
  it('alpha revokes carol’s delegation; beta refuses dave’s re-delegated invocation with reason revoked, also after both restart', async (t) => {
    const e = await e2e(t, 'mesh-revocation-e2e-', { logLevel: 'warn' })
    const { cli: ok, run } = e
    const { mesh, start } = fixedPortMeshes(e)
    const api = (m: Mesh) => m.api as HttpClient
    const alpha = await mesh('alpha')
    const beta = await mesh('beta')

    await connectCli(e, alpha, beta)

    // carol: a human member of alpha; dave: her agent (a key of hers, no member anywhere).
    const carol = await ok<{ did: string }>(undefined, 'key', 'new', 'carol')
    const dave = await ok<{ did: string }>(undefined, 'key', 'new', 'dave')
    await ok(alpha, 'member', 'add', 'carol', '--kind', 'human', '--name', 'carol')

    // beta's architect delegates its echo agent to carol (recorded at beta: its architect issued it);
    // carol re-delegates it to dave, offline, with beta's delegation as proof.
    const toCarol = await delegateToFile<{ token: string; recorded: boolean }>(
      e,
      beta,
      'to-carol',
      carol.did,
      'agent/invoke',
      ...['--agent', 'echo', '--skill', 'echo'],
    )
    assert.equal(toCarol.recorded, true)
    const toDave = await delegateToFile<{ token: string; cid: string }>(
      e,
      undefined,
      'to-dave',
      dave.did,
      'agent/invoke',
      ...['--with', agentResourceOf(beta.did as string, 'echo'), '--skill', 'echo'],
      ...['--proof', toCarol.proof, '--as', 'carol'],
    )
    await ok(beta, 'trust', carol.did, '--tier', '2', '--reason', 'alpha’s carol, met in person')
    await ok(beta, 'trust', dave.did, '--tier', '3', '--reason', 'carol’s agent')
    const echo = [
      ...['invoke', beta.proc?.http as string, 'echo', 'echo', '--as', 'dave'],
      ...['--input', '{"text":"hello"}', '--proof', toDave.proof],
    ]
    const res = await ok<{ result: { echo: unknown } }>(undefined, ...echo)
    assert.deepEqual(res.result.echo, { text: 'hello' })

    // beta lists what its architect issued.
    const atBeta = await ok<DelegationList>(beta, 'delegations')
    assert.ok(atBeta.delegations.some((d) => d.audience === carol.did && d.revoked === null))

    // A mesh can only revoke what its own principals issued: alpha revoking beta's delegation
    // to carol holds at alpha only (nothing is announced).
    const local = await ok<{ announcedTo: string[] }>(alpha, 'revoke', toCarol.proof, '--reason', 'test')
    assert.deepEqual(local.announcedTo, [])

    // alpha's architect revokes carol's delegation to dave (giving its token: alpha had not
    // recorded it, carol issued it offline). The signed notice reaches beta within one
    // sync interval (300 ms here) of the revocation's answer.
    const revoked = await ok<{ announcedTo: string[]; revocation: { cid: string; by: string } }>(
      alpha,
      ...['revoke', toDave.proof, '--reason', 'carol left the project'],
    )
    assert.equal(revoked.revocation.cid, toDave.cid)
    assert.deepEqual(revoked.announcedTo, [beta.did])
    const held = async (m: Mesh) =>
      (await api(m).get<DelegationList>('/api/auth/delegations')).revocations.find(
        (r) => r.cid === toDave.cid,
      )
    const answeredAt = Date.now()
    const atBetaNow = await waitFor(() => held(beta), 'the revocation reaches beta', 10_000, 10)
    const elapsed = Date.now() - answeredAt
    t.diagnostic(`the revocation was held at beta ${elapsed} ms after alpha's CLI returned`)
    assert.ok(elapsed <= SYNC_INTERVAL_MS, `held at beta after ${elapsed} ms`)
    assert.equal(atBetaNow.mesh, alpha.did)
    assert.equal(atBetaNow.by, (await e.keystore.load('alpha-architect')).did)
    assert.equal(atBetaNow.notice?.mesh, alpha.did)
    // beta still has not been told about beta's own delegation to carol (alpha cannot revoke it).
    assert.equal(
      (await api(beta).get<DelegationList>('/api/auth/delegations')).revocations.some(
        (r) => r.cid !== toDave.cid,
      ),
      false,
    )

    const refusedRevoked = async () => {
      const r = await run(undefined, ...echo)
      assert.equal(r.code, 1, r.stderr)
      assert.equal(r.out.error?.code, 'MESH_UCAN_INVALID', r.stderr)
      assert.equal(r.out.error?.details.reason, 'revoked', JSON.stringify(r.out.error))
    }
    await refusedRevoked()
    const listed = await ok<DelegationList>(alpha, 'delegations')
    const own = listed.delegations.find((d) => d.cid === toDave.cid)
    assert.equal(own?.issuer, carol.did)
    assert.ok(own?.revoked !== null && own?.revoked?.reason === 'carol left the project')

    // Both restart: the revocation holds on every side.
    await alpha.proc?.stop('SIGTERM')
    await beta.proc?.stop('SIGTERM')
    await start(alpha)
    await start(beta)
    await refusedRevoked()
    assert.ok(await held(beta))
    assert.ok(await held(alpha))
    for (const m of [alpha, beta]) assert.equal((await ok<{ ok: boolean }>(m, 'audit', '--verify')).ok, true)
  })
})
