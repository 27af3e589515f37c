import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { type MeshProcess, runMesh, startMesh, waitFor } from '../../scripts/lib/processes.ts'
import { type HttpClient, signIn } from '../../src/cli/http-client.ts'
import type { ConnectionView, PeerView } from '../../src/connections/index.ts'
import { HumanKeystore } from '../../src/identity/index.ts'
import { tempDir } from '../fixtures/principals.ts'

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

interface Mesh {
  name: string
  dir: string
  httpPort: number
  p2pPort: number
  proc?: MeshProcess
  api?: HttpClient
  did?: string
}

describe('federation across processes, driven by the CLI', () => {
  it('two and three meshes: lifecycle both ways, decline, re-request, auto-accept, offline delivery', async (t) => {
    const root = await tempDir(t, 'mesh-fed-e2e-')
    const env = { MESH_KEYSTORE: join(root, 'keys'), MESH_LOG_LEVEL: 'info' }
    const keystore = new HumanKeystore(join(root, 'keys'))
    const meshes = new Map<string, Mesh>()
    t.after(async () => {
      await Promise.all([...meshes.values()].map((m) => m.proc?.stop('SIGKILL')))
    })

    const start = async (m: Mesh) => {
      m.proc = await startMesh(
        [
          'start',
          ...[
            '--data',
            m.dir,
            '--http',
            `127.0.0.1:${m.httpPort}`,
            '--listen',
            `/ip4/127.0.0.1/tcp/${m.p2pPort}`,
          ],
          ...['--discovery-interval', '60000', '--retry-base', '100', '--retry-max', '1000'],
          ...['--send-timeout', '3000', '--probe-interval', '500'],
        ],
        env,
      )
      m.api = await signIn(m.proc.http, await keystore.load(`${m.name}-architect`))
      m.did = m.proc.did as string
    }
    for (const name of ['alpha', 'beta', 'gamma']) {
      const m: Mesh = { name, dir: join(root, name), httpPort: await freePort(), p2pPort: await freePort() }
      const init = await runMesh(['init', '--data', m.dir, '--name', name, '--json'], env)
      assert.equal(init.code, 0, init.stderr)
      await start(m)
      meshes.set(name, m)
    }
    const [alpha, beta, gamma] = ['alpha', 'beta', 'gamma'].map((n) => meshes.get(n) as Mesh) as [
      Mesh,
      Mesh,
      Mesh,
    ]
    const addr = (m: Mesh) => m.proc?.listen[0] as string

    /** `mesh <args> --data <m's dir> --json`, which must succeed. */
    const cli = async <T>(m: Mesh, ...args: string[]): Promise<T> => {
      const res = await runMesh([...args, '--data', m.dir, '--json'], env)
      assert.equal(res.code, 0, `mesh ${args.join(' ')}: ${res.stderr}`)
      return JSON.parse(res.stdout) as T
    }
    const view = async (m: Mesh, id: string) =>
      (await (m.api as HttpClient).get<ConnectionView[]>('/api/connections')).find((c) => c.id === id)
    /** Both sides show `id` in `status` (with the same agreement version). */
    const both = (x: Mesh, y: Mesh, id: string, status: string, timeoutMs = 20_000) =>
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
    assert.equal((await view(gamma, c4.id))?.status, 'accepted')
    await start(alpha)
    await both(alpha, gamma, c4.id, 'disconnected')
    await waitFor(async () => (await view(beta, c5.id))?.status === 'accepted', 'beta–gamma accepted again')
    assert.ok(alpha.proc?.logs.some((l) => l.event === 'federation.send.success'))

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
