import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runMesh, waitFor } from '../../scripts/lib/processes.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import type { ConnectionView, PeerView } from '../../src/connections/index.ts'
import {
  e2e,
  FAST_RETRY,
  type FixedPortMesh,
  fixedPortMeshes,
  connectionView as view,
} from '../fixtures/e2e.ts'

type Mesh = FixedPortMesh

describe('federation across processes, driven by the CLI', () => {
  it('two and three meshes: lifecycle both ways, decline, re-request, auto-accept, offline delivery', async (t) => {
    const e = await e2e(t, 'mesh-fed-e2e-')
    const { env, cli } = e
    const { mesh, start } = fixedPortMeshes(e, {
      args: (m) => [
        'start',
        ...['--data', m.dir, '--http', `127.0.0.1:${m.httpPort}`],
        ...['--listen', `/ip4/127.0.0.1/tcp/${m.p2pPort}`],
        ...['--discovery-interval', '60000', ...FAST_RETRY, '--probe-interval', '500'],
      ],
    })
    const meshes: Mesh[] = []
    for (const name of ['alpha', 'beta', 'gamma']) meshes.push(await mesh(name))
    const [alpha, beta, gamma] = meshes as [Mesh, Mesh, Mesh]
    const addr = (m: Mesh) => m.proc?.listen[0] as string
    /** Both sides show `id` in `status` (with the same agreement version). */
    const both = (x: Mesh, y: Mesh, id: string, status: string, timeoutMs = 60_000) =>
      waitFor(
        async () => {
          const [a, b] = await Promise.all([view(x, id), view(y, id)])
          return a?.status === status && b?.status === status && a.agreementVersion === b.agreementVersion
            ? a
            : undefined
        },
        `${x.name}/${y.name} ${id} ${status}`,
        timeoutMs,
      )

    // alpha → beta by multiaddr; beta sees the request and accepts it.
    const c1 = await cli<{ id: string; status: string }>(alpha, 'connect', addr(beta), '--note', 'hi beta')
    assert.equal(c1.status, 'pending')
    await both(alpha, beta, c1.id, 'pending')
    const requests = await cli<ConnectionView[]>(beta, 'requests')
    assert.deepEqual(
      requests.map((r) => [r.id, r.peerDid, r.note]),
      [[c1.id, alpha.did, 'hi beta']],
    )
    await cli(beta, 'accept', c1.id)
    assert.equal((await both(alpha, beta, c1.id, 'accepted')).agreementVersion, 1)

    // beta ends it; then beta asks again (by did: it knows alpha's addresses now) and alpha declines.
    await cli(beta, 'disconnect', c1.id)
    await both(alpha, beta, c1.id, 'disconnected')
    const c2 = await cli<{ id: string }>(beta, 'connect', alpha.did as string)
    await both(alpha, beta, c2.id, 'pending')
    await cli(alpha, 'decline', c2.id)
    await both(alpha, beta, c2.id, 'declined')
    // Re-request: a new id, and the renewed agreement is version 2.
    const c3 = await cli<{ id: string }>(beta, 'connect', alpha.did as string)
    await both(alpha, beta, c3.id, 'pending')
    await cli(alpha, 'accept', c3.id)
    assert.equal((await both(alpha, beta, c3.id, 'accepted')).agreementVersion, 2)

    // gamma accepts automatically: alpha and beta connect to it; three meshes pairwise.
    const policy = await cli<{ autoAccept: boolean }>(gamma, 'policy', '--auto-accept', 'true')
    assert.equal(policy.autoAccept, true)
    const c4 = await cli<{ id: string }>(alpha, 'connect', addr(gamma))
    const c5 = await cli<{ id: string }>(beta, 'connect', addr(gamma))
    await both(alpha, gamma, c4.id, 'accepted')
    await both(beta, gamma, c5.id, 'accepted')

    // gamma crashes: beta sees its connection degraded; alpha disconnects meanwhile and
    // then restarts itself; when gamma returns the queued disconnect reaches it.
    await gamma.proc?.stop('SIGKILL')
    await waitFor(async () => (await view(beta, c5.id))?.status === 'degraded', 'beta–gamma degraded')
    await cli(alpha, 'disconnect', c4.id)
    await waitFor(async () => {
      const peers = await (alpha.api as HttpClient).get<PeerView[]>('/api/federation/peers')
      const g = peers.find((p) => p.did === gamma.did)
      return g !== undefined && g.queued === 1 && g.lastError !== null
    }, 'alpha’s disconnect queued for gamma with an error')
    await alpha.proc?.stop('SIGTERM')
    await start(gamma)
    // Not disconnected yet (alpha, down, still holds it): accepted, or degraded once
    // gamma's probe has found alpha down, which a loaded machine may do first.
    assert.match((await view(gamma, c4.id))?.status ?? 'none', /^(accepted|degraded)$/)
    await start(alpha)
    await both(alpha, gamma, c4.id, 'disconnected')
    await waitFor(async () => (await view(beta, c5.id))?.status === 'accepted', 'beta–gamma accepted again')
    // gamma commits the disconnect before its reply reaches alpha, which logs the
    // delivery only once it has the reply: wait for it rather than race it
    await waitFor(
      () => alpha.proc?.logs.some((l) => l.event === 'federation.send.success'),
      'alpha to log the delivery of its queued disconnect',
    )

    // Views and audit through the CLI.
    const peers = await cli<PeerView[]>(alpha, 'peers')
    assert.deepEqual(peers.map((p) => p.did).sort(), [beta.did, gamma.did].sort())
    assert.equal(peers.find((p) => p.did === beta.did)?.state, 'accepted')
    for (const m of [alpha, beta, gamma]) {
      const report = await cli<{ ok: boolean }>(m, 'audit', '--verify')
      assert.equal(report.ok, true)
    }
    const refused = await runMesh(['accept', c3.id, '--data', alpha.dir, '--json'], env)
    assert.equal(refused.code, 1)
    assert.match(refused.stdout, /MESH_CONFLICT/)
  })
})
