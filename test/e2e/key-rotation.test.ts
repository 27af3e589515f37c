import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { getJson, waitFor } from '../../scripts/lib/processes.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import type { PeerView } from '../../src/connections/index.ts'
import type { KeyRotationResult } from '../../src/keys/index.ts'
import { type CliMesh, e2e, FAST_RETRY, freePort, connectionView as view } from '../fixtures/e2e.ts'

const INTERVAL = '500'

interface Mesh extends CliMesh {
  p2pPort: number
}

describe('key rotation across processes, driven by the CLI', () => {
  it('mesh key rotate: the connection keeps working, the registry lists the mesh once under its new did', async (t) => {
    const {
      root,
      start: startProc,
      init,
      registry: startRegistry,
      signInArchitect,
      cli,
    } = await e2e(t, 'mesh-rotate-e2e-')
    const registry = await startRegistry('127.0.0.1:0', INTERVAL)

    const start = async (m: Mesh) => {
      m.proc = await startProc([
        'start',
        ...['--data', m.dir, '--http', '127.0.0.1:0', '--listen', `/ip4/127.0.0.1/tcp/${m.p2pPort}`],
        ...['--registry', registry.http, '--public'],
        ...['--discovery-interval', INTERVAL, '--heartbeat-interval', INTERVAL],
        ...FAST_RETRY,
      ])
      m.api = await signInArchitect(m.proc.http, m.name)
    }
    const meshes: Mesh[] = []
    for (const name of ['alpha', 'beta']) {
      const m: Mesh = { name, dir: join(root, name), p2pPort: await freePort() }
      await init(name, m.dir)
      await start(m)
      meshes.push(m)
    }
    const [alpha, beta] = meshes as [Mesh, Mesh]
    const identity = alpha.proc?.did as string

    // Polling goes through the HTTP API (a CLI process per poll is slow); every act through the CLI.
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
