import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { getJson, type MeshProcess, runMesh, startMesh, waitFor } from '../../scripts/lib/processes.ts'
import { type HttpClient, signIn } from '../../src/cli/http-client.ts'
import type { ConnectionView, PeerView } from '../../src/connections/index.ts'
import { HumanKeystore } from '../../src/identity/index.ts'
import type { KeyRotationResult } from '../../src/keys/index.ts'
import { tempDir } from '../fixtures/principals.ts'

const INTERVAL = '500'

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
  p2pPort: number
  proc?: MeshProcess
  api?: HttpClient
}

describe('key rotation across processes, driven by the CLI', () => {
  it('mesh key rotate: the connection keeps working, the registry lists the mesh once under its new did', async (t) => {
    const root = await tempDir(t, 'mesh-rotate-e2e-')
    const env = { MESH_KEYSTORE: join(root, 'keys'), MESH_LOG_LEVEL: 'info' }
    const running: MeshProcess[] = []
    const keystore = new HumanKeystore(join(root, 'keys'))
    t.after(async () => {
      await Promise.all(running.map((p) => p.stop('SIGKILL')))
    })
    const registry = await startMesh(
      [
        'registry',
        '--data',
        join(root, 'registry'),
        '--http',
        '127.0.0.1:0',
        '--heartbeat-interval',
        INTERVAL,
      ],
      env,
    )
    running.push(registry)

    const start = async (m: Mesh) => {
      m.proc = await startMesh(
        [
          'start',
          ...['--data', m.dir, '--http', '127.0.0.1:0', '--listen', `/ip4/127.0.0.1/tcp/${m.p2pPort}`],
          ...['--registry', registry.http, '--public'],
          ...['--discovery-interval', INTERVAL, '--heartbeat-interval', INTERVAL],
          ...['--retry-base', '100', '--retry-max', '1000', '--send-timeout', '3000'],
        ],
        env,
      )
      running.push(m.proc)
      m.api = await signIn(m.proc.http, await keystore.load(`${m.name}-architect`))
    }
    const meshes: Mesh[] = []
    for (const name of ['alpha', 'beta']) {
      const m: Mesh = { name, dir: join(root, name), p2pPort: await freePort() }
      const init = await runMesh(['init', '--data', m.dir, '--name', name, '--json'], env)
      assert.equal(init.code, 0, init.stderr)
      await start(m)
      meshes.push(m)
    }
    const [alpha, beta] = meshes as [Mesh, Mesh]
    const identity = alpha.proc?.did as string

    const cli = async <T>(m: Mesh, ...args: string[]): Promise<T> => {
      const res = await runMesh([...args, '--data', m.dir, '--json'], env)
      assert.equal(res.code, 0, `mesh ${args.join(' ')}: ${res.stderr}`)
      return JSON.parse(res.stdout) as T
    }
    // Polling goes through the HTTP API (a CLI process per poll is slow); every act through the CLI.
    const view = async (m: Mesh, id: string) =>
      (await (m.api as HttpClient).get<ConnectionView[]>('/api/connections')).find((c) => c.id === id)
    const both = (id: string, status: string) =>
      waitFor(async () => {
        const [a, b] = await Promise.all([view(alpha, id), view(beta, id)])
        return a?.status === status && b?.status === status && a.agreementVersion === b.agreementVersion
          ? b
          : undefined
      }, `${id} ${status} on both sides`)
    const registryDids = async () =>
      (
        await getJson<{ meshes: Array<{ did: string; name: string }> }>(
          `${registry.http}/api/meshes/public?limit=100`,
        )
      ).meshes
    await waitFor(async () => (await registryDids()).some((m) => m.did === identity), 'alpha in the registry')

    const c1 = await cli<{ id: string }>(alpha, 'connect', beta.proc?.listen[0] as string)
    await both(c1.id, 'pending')
    await cli(beta, 'accept', c1.id)
    const before = await both(c1.id, 'accepted')

    const rotated = await cli<KeyRotationResult>(alpha, 'key', 'rotate')
    assert.equal(rotated.identity, identity)
    assert.equal(rotated.previous, identity)
    assert.notEqual(rotated.did, identity)
    assert.deepEqual(rotated.announcedTo, [beta.proc?.did])
    const health = await getJson<{ did: string; peerId: string }>(`${alpha.proc?.http}/api/health`)
    assert.deepEqual([health.did, health.peerId], [rotated.did, rotated.peerId])

    // Beta takes the new key from the announcement; the connection is the same one.
    await cli<PeerView[]>(beta, 'peers')
    await waitFor(async () => {
      const p = (await (beta.api as HttpClient).get<PeerView[]>('/api/federation/peers')).find(
        (x) => x.did === identity,
      )
      return p?.keys.length === 2 && p.keys[1] === rotated.did
    }, 'beta to hold alpha’s new key')
    const after = await view(beta, c1.id)
    assert.equal(after?.status, 'accepted')
    assert.equal(after?.agreementVersion, before.agreementVersion)
    assert.equal(after?.peerKeyDid, rotated.did)

    // The connection still works both ways: alpha (new key) disconnects, beta re-requests
    // by alpha's identity and reaches its new PeerId, alpha accepts.
    await cli(alpha, 'disconnect', c1.id)
    await both(c1.id, 'disconnected')
    const c2 = await cli<{ id: string }>(beta, 'connect', identity)
    await both(c2.id, 'pending')
    await cli(alpha, 'accept', c2.id)
    assert.equal((await both(c2.id, 'accepted')).agreementVersion, before.agreementVersion + 1)

    // The registry lists alpha once, under its new did.
    await waitFor(async () => {
      const listed = await registryDids()
      const alphas = listed.filter((m) => m.name === 'alpha')
      return alphas.length === 1 && alphas[0]?.did === rotated.did
    }, 'the registry to list alpha once, under its new did')

    // After a restart alpha runs on the new key and its audit log (both keys) verifies.
    await alpha.proc?.stop('SIGTERM')
    await start(alpha)
    assert.equal(alpha.proc?.did, rotated.did)
    assert.equal((await cli<{ ok: boolean }>(alpha, 'audit', '--verify')).ok, true)
    assert.equal((await cli<{ ok: boolean }>(beta, 'audit', '--verify')).ok, true)
    await cli(beta, 'disconnect', c2.id)
    await both(c2.id, 'disconnected')
  })
})
