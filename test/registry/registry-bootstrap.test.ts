import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { createRegistryBootstrap, type RegistryService } from '../../src/registry/index.ts'
import { tempStore } from '../fixtures/principals.ts'
import { captureLogger, startMesh, type TestMesh, waitFor } from '../p2p/nodes.ts'
import { listenTestRegistry, signedFor, TestClock } from './registry-fixtures.ts'

/** A real registry on a socket (port 0), stopped when the test ends. */
async function startRegistry(
  t: TestContext,
  clock: TestClock,
): Promise<{ url: string; registry: RegistryService }> {
  return listenTestRegistry(t, await tempStore(t), { now: clock.now })
}

/** A port nothing listens on: dials to it are refused at once. */
const DEAD_PORT = 1

describe('bootstrapping from a flooded registry (issue 10 finding 6)', () => {
  it('a fresh node finds the long-lived meshes behind 2,100 online fakes named aaa…', async (t) => {
    const clock = new TestClock(Date.now())
    const { url, registry } = await startRegistry(t, clock)
    const real: TestMesh[] = []
    for (const name of ['real-alpha', 'real-bravo']) {
      const mesh = await startMesh(t, { name, intervalMs: 60_000 })
      real.push(mesh)
      await registry.heartbeat(
        signedFor(mesh.key, clock.ms, { name, multiaddrs: mesh.libp2p.getMultiaddrs().map(String) }),
      )
    }
    // The flood: more fresh dids than discovery reads by name (20 pages of 100), all
    // online, all dead, all sorting before the real meshes.
    clock.advance(1_000)
    for (let i = 0; i < 2_100; i++) {
      const key = Ed25519KeyPair.generate()
      const peerId = key.peerId().toString()
      await registry.heartbeat(
        signedFor(key, clock.ms, {
          name: `aaa-${String(i).padStart(4, '0')}`,
          multiaddrs: [`/ip4/127.0.0.1/tcp/${DEAD_PORT}/p2p/${peerId}`],
        }),
      )
    }
    const fresh = await startMesh(t, {
      name: 'charlie',
      registryUrl: url,
      intervalMs: 60_000,
      maxRegistryDials: 4,
      maxRegistryAttempts: 8,
    })
    for (const mesh of real) {
      await waitFor(
        () => fresh.libp2p.getConnections(mesh.libp2p.peerId).length > 0,
        `charlie connected to ${mesh.key.did}`,
      )
    }
    const joined = await waitFor(
      () => fresh.lines.find((l) => l.event === 'discovery.registry_joined'),
      'the registry join logged',
    )
    // Bounded: it read at most what it may try, and tried no more than that.
    assert.ok((joined.listed as number) <= 8)
    assert.ok((joined.tried as number) <= 8)
  })

  it('asks a registry that predates sort=age by name instead', async (t) => {
    const a = await startMesh(t, { name: 'alpha', intervalMs: 60_000 })
    const queries: string[] = []
    // An older registry: `sort` is an unknown parameter, refused with 400.
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      queries.push(url.search)
      res.setHeader('content-type', 'application/json')
      if (url.searchParams.has('sort'))
        return void res.writeHead(400).end('{"error":{"code":"MESH_BAD_REQUEST"}}')
      const item = { did: a.key.did, peerId: a.libp2p.peerId.toString(), multiaddrs: [a.addr()] }
      res.end(JSON.stringify({ meshes: [item], nextCursor: null }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise((resolve) => server.close(resolve)))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const c = await startMesh(t, { name: 'charlie', registryUrl: url, intervalMs: 60_000 })
    await waitFor(() => c.libp2p.getConnections(a.libp2p.peerId).length > 0, 'charlie connected to alpha')
    assert.deepEqual(queries.slice(0, 2), ['?status=online&limit=100&sort=age', '?status=online&limit=100'])
  })
})

describe('the registry bootstrap source', () => {
  it('lists the online meshes oldest first, without the asking mesh, as dialable multiaddrs', async (t) => {
    const clock = new TestClock(Date.now())
    const { url, registry } = await startRegistry(t, clock)
    const keys = [Ed25519KeyPair.generate(), Ed25519KeyPair.generate(), Ed25519KeyPair.generate()]
    for (const [i, key] of keys.entries()) {
      // listed without /p2p/, as a registry may store them
      await registry.heartbeat(
        signedFor(key, clock.ms, { name: `zz-${3 - i}`, multiaddrs: [`/ip4/127.0.0.1/tcp/${4000 + i}`] }),
      )
      clock.advance(1_000)
    }
    const { logger } = captureLogger()
    const source = createRegistryBootstrap({ registryUrl: `${url}/`, maxAttempts: 2, logger })
    const [self, ...others] = keys as [Ed25519KeyPair, ...Ed25519KeyPair[]]
    const targets = await source.targets({ self: self.did })
    assert.deepEqual(
      targets.map((addrs) => addrs.map(String)),
      others.map((key, i) => [`/ip4/127.0.0.1/tcp/${4001 + i}/p2p/${key.peerId().toString()}`]),
    )
    assert.equal((await source.targets({ self: 'did:key:nobody' })).length, 2, 'capped at maxAttempts')
  })

  it('an unreachable registry is logged and yields nothing', async () => {
    const { logger, lines } = captureLogger()
    const source = createRegistryBootstrap({ registryUrl: `http://127.0.0.1:${DEAD_PORT}`, logger })
    assert.deepEqual(await source.targets({ self: 'did:key:nobody' }), [])
    assert.ok(lines.some((l) => l.event === 'discovery.registry_unreachable'))
  })
})
