import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { waitFor } from '../../scripts/lib/processes.ts'
import { agentResourceOf, encodeToken, issueDelegation } from '../../src/auth/authority/index.ts'
import type { TrustView } from '../../src/auth/index.ts'
import { MESH_KEY_FILE, readKeyFile } from '../../src/identity/index.ts'
import {
  type CliMesh,
  connectionView,
  delegateToFile,
  e2e,
  refusedCli,
  startCliMeshes,
} from '../fixtures/e2e.ts'

type Mesh = CliMesh

describe('cross-mesh authority across processes, driven by the CLI', () => {
  it('chains on the wire; a foreign agent invokes a local agent with a human-signed chain; promotion and automatic demotion', async (t) => {
    const e = await e2e(t, 'mesh-authority-e2e-')
    const { root, keystore, cli: ok } = e
    const meshes = await startCliMeshes(e, ['alpha', 'beta'])
    const [alpha, beta] = meshes as [Mesh, Mesh]

    const refused = (code: string, m: Mesh | undefined, ...args: string[]) => refusedCli(e, code, m, ...args)
    const status = async (m: Mesh, id: string) => (await connectionView(m, id))?.status

    // 1. The handshake with UCAN chains on both sides: each peer verifies the chain the
    //    other forwarded (rooted in the sender's root delegation, with its architect's credential).
    const c = await ok<{ id: string }>(alpha, 'connect', beta.proc?.listen[0] as string)
    await waitFor(async () => (await status(beta, c.id)) === 'pending', 'request at beta')
    await ok(beta, 'accept', c.id)
    await waitFor(async () => (await status(alpha, c.id)) === 'accepted', 'accepted at alpha')
    const betaTrust = await ok<{ meshes: TrustView[] }>(beta, 'trust')
    await waitFor(async () => {
      const all = await ok<{ meshes: TrustView[] }>(beta, 'trust')
      return all.meshes.some((m) => m.did === alpha.did && m.accepted >= 1)
    }, 'beta counts alpha’s accepted request')
    assert.ok(Array.isArray(betaTrust.meshes))

    // 2. dave: an agent of beta's architect (carol) — a foreign principal at alpha, tier 4.
    const dave = await ok<{ did: string }>(undefined, 'key', 'new', 'dave')
    const alphaApi = alpha.proc?.http as string
    const echo = ['invoke', alphaApi, 'echo', 'echo', '--as', 'dave', '--input', '{"text":"hello"}']
    const noChain = await refused('MESH_UCAN_INVALID', undefined, ...echo)
    assert.equal(noChain.details.proof, 'ucan')

    // alpha's architect delegates echo to beta's architect; she re-delegates it to her agent
    // dave (a human-signed delegation from dave's home side, offline, with alpha's as proof).
    const carol = (await keystore.load('beta-architect')).did
    const toCarol = await delegateToFile(
      e,
      alpha,
      'to-carol',
      carol,
      'agent/invoke',
      ...['--agent', 'echo', '--skill', 'echo'],
    )
    const toDave = await delegateToFile(
      e,
      undefined,
      'to-dave',
      dave.did,
      'agent/invoke',
      ...['--with', agentResourceOf(alpha.did as string, 'echo'), '--skill', 'echo'],
      ...['--proof', toCarol.proof, '--as', 'beta-architect'],
    )
    const withChain = [...echo, '--proof', toDave.proof]

    // Beyond its tier: carol (tier 4 here) cannot re-delegate; then dave (tier 4) may only participate.
    const redelegation = await refused('MESH_TIER_FORBIDDEN', undefined, ...withChain)
    assert.equal(redelegation.details.reason, 'redelegation')
    await ok(alpha, 'trust', carol, '--tier', '2', '--reason', 'beta’s architect, met in person')
    const participation = await refused('MESH_TIER_FORBIDDEN', undefined, ...withChain)
    assert.equal(participation.details.reason, 'participation')

    // Promoted by alpha's architect (a signed trust/promote): accepted, end to end.
    const promoted = await ok<TrustView>(
      alpha,
      'trust',
      dave.did,
      '--tier',
      '3',
      '--reason',
      'carol’s CI agent',
    )
    assert.deepEqual([promoted.tier, promoted.tierReason], [3, 'carol’s CI agent'])
    const res = await ok<{ result: { echo: unknown }; human: string; tier: number }>(undefined, ...withChain)
    assert.deepEqual(res.result.echo, { text: 'hello' })
    assert.equal(res.tier, 3)
    // The human this mesh can vouch for in that chain is its own architect (carol's
    // membership credential was not presented).
    assert.equal(res.human, (await keystore.load('alpha-architect')).did)

    // Without the human link: a delegation from alpha's mesh key alone is refused, and
    // five violations within the window demote dave at once.
    const meshKey = await readKeyFile(join(alpha.dir, MESH_KEY_FILE))
    const autonomous = await issueDelegation({
      issuer: meshKey,
      audience: dave.did,
      capabilities: [{ can: 'agent/invoke', with: agentResourceOf(alpha.did as string, 'echo') }],
      expiration: Math.floor(Date.now() / 1000) + 600,
    })
    const autonomousFile = join(root, 'autonomous.ucan')
    await writeFile(autonomousFile, await encodeToken(autonomous))
    for (let i = 0; i < 5; i++) {
      await refused('MESH_NOT_HUMAN_SIGNED', undefined, ...echo, '--proof', `@${autonomousFile}`)
    }
    const demoted = await waitFor(async () => {
      const r = await ok<TrustView>(alpha, 'trust', dave.did)
      return r.tier === 4 ? r : undefined
    }, 'dave demoted')
    assert.equal(demoted.tierReason, 'violations')
    await refused('MESH_TIER_FORBIDDEN', undefined, ...withChain)
    const audit = await ok<{ entries: Array<{ action: string; subject?: string }> }>(
      alpha,
      'audit',
      '--action',
      'trust.',
    )
    const about = audit.entries.filter((e) => e.subject === dave.did).map((e) => e.action)
    assert.ok(about.includes('trust.promoted') && about.includes('trust.demoted'), about.join(','))
    for (const m of [alpha, beta]) assert.equal((await ok<{ ok: boolean }>(m, 'audit', '--verify')).ok, true)
  })
})
