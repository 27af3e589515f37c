import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { waitFor } from '../../scripts/lib/processes.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import type { ConnectionView } from '../../src/connections/index.ts'
import { acceptRoom, type CliMesh, connectionView, e2e, startCliMeshes } from '../fixtures/e2e.ts'

type Msg = { id: string; body: string }

describe('room lifecycle across processes, driven by the CLI (issue 13)', () => {
  it('history limit, pause and resume, and crossing requests between real meshes', async (t) => {
    const e = await e2e(t, 'mesh-links-e2e-', { logLevel: 'warn' })
    const { cli, run } = e
    const [alpha, beta, gamma] = (await startCliMeshes(e, ['alpha', 'beta', 'gamma'])) as [
      CliMesh,
      CliMesh,
      CliMesh,
    ]
    const api = (m: CliMesh) => m.api as HttpClient
    const addr = (m: CliMesh) => m.proc?.listen[0] as string
    const bodies = async (m: CliMesh, room: string) =>
      (await cli<{ messages: Msg[] }>(m, 'messages', room, '--limit', '200')).messages
        .map((x) => x.body)
        .sort()

    // Crossing: alpha and gamma ask each other at once; one connection on both sides.
    const asked = await Promise.all([
      run<{ id: string }>(alpha, 'connect', addr(gamma)),
      run<{ id: string }>(gamma, 'connect', addr(alpha)),
    ])
    for (const [i, res] of asked.entries()) {
      if (res.code === 0) continue
      // Rarely one lands first: the other is told to answer it instead, and does.
      assert.equal(res.out.error?.details.reason, 'request-received', JSON.stringify(res.out))
      await cli(i === 0 ? alpha : gamma, 'accept', res.out.error?.details.connectionId as string)
    }
    const live = (list: ConnectionView[]) =>
      list.filter((c) => c.status === 'accepted' || c.status === 'pending')
    await waitFor(async () => {
      const [x, y] = [
        live(await cli<ConnectionView[]>(alpha, 'connections')),
        live(await cli<ConnectionView[]>(gamma, 'connections')),
      ]
      return (
        x.length === 1 &&
        y.length === 1 &&
        x[0]?.status === 'accepted' &&
        x[0].id === y[0]?.id &&
        y[0].status === 'accepted'
      )
    }, 'one accepted connection between alpha and gamma')

    // History: beta gets only the last 3 of alpha's 6 messages, then everything live.
    const c = await cli<{ id: string }>(alpha, 'connect', addr(beta))
    await waitFor(async () => (await connectionView(beta, c.id)) !== undefined, 'request arrives')
    await cli(beta, 'accept', c.id)
    await waitFor(async () => (await connectionView(alpha, c.id))?.status === 'accepted', 'accepted')
    const policy = await cli<{ backfillLimit: number | null; autoAccept: boolean }>(
      alpha,
      'policy',
      '--backfill-limit',
      '3',
    )
    assert.equal(policy.backfillLimit, 3)
    const room = await cli<{ id: string }>(alpha, 'room', 'create', 'general')
    for (let i = 0; i < 6; i++) await cli(alpha, 'post', room.id, `old ${i}`)
    await cli(alpha, 'share', room.id, beta.did as string)
    await acceptRoom(cli, beta, room.id) // beta's architect accepts the invitation (SPEC §9)
    const stateVector = async (m: CliMesh) =>
      (await api(m).get<{ stateVector: string }>(`/api/rooms/${room.id}`)).stateVector
    await waitFor(
      async () =>
        (await bodies(beta, room.id).then(
          () => true,
          () => false,
        )) && (await stateVector(alpha)) === (await stateVector(beta)),
      'beta caught up',
    )
    assert.deepEqual(await bodies(beta, room.id), ['old 3', 'old 4', 'old 5'])

    // Pause at beta: messages both ways wait; resume delivers each once.
    const paused = await cli<{ status: string }>(beta, 'pause', c.id)
    assert.equal(paused.status, 'paused')
    await cli(alpha, 'post', room.id, 'alpha while paused')
    await cli(beta, 'post', room.id, 'beta while paused')
    const refusals = async () =>
      (
        await api(beta).get<{ entries: Array<{ peer: string | null; code: string }> }>(
          '/api/federation/rejected?limit=200',
        )
      ).entries.filter((x) => x.peer === alpha.did && x.code === 'MESH_NOT_CONNECTED').length
    await waitFor(async () => (await refusals()) >= 2, 'alpha refused twice while paused', 30_000)
    assert.deepEqual(await bodies(beta, room.id), ['beta while paused', 'old 3', 'old 4', 'old 5'])
    assert.ok(!(await bodies(alpha, room.id)).includes('beta while paused'))
    assert.equal((await cli<{ status: string }>(beta, 'resume', c.id)).status, 'accepted')
    const want = ['alpha while paused', 'beta while paused', 'old 3', 'old 4', 'old 5']
    await waitFor(
      async () => (await bodies(beta, room.id)).join() === want.join(),
      'beta caught up after resume',
    )
    await waitFor(
      async () => (await bodies(alpha, room.id)).filter((b) => b.endsWith('while paused')).length === 2,
      'alpha caught up after resume',
    )
    const ids = (await cli<{ messages: Msg[] }>(beta, 'messages', room.id, '--limit', '200')).messages.map(
      (m) => m.id,
    )
    assert.equal(new Set(ids).size, 5)
  })
})
