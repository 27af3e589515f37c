import assert from 'node:assert/strict'
import { closeSync, openSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { signIn } from '../../src/cli/http-client.ts'
import { HumanKeystore } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { initMesh, STORE_DIR } from '../../src/mesh-info.ts'
import { createMeshNode } from '../../src/mesh-node.ts'
import { MeshStore, StoreMonitor } from '../../src/store/index.ts'
import { tempDir } from '../fixtures/principals.ts'

async function startNode(t: TestContext) {
  const root = await tempDir(t)
  const dataDir = join(root, 'alpha')
  const keystore = new HumanKeystore(join(root, 'keys'))
  const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
  await store.open()
  await initMesh({ store, dataDir, name: 'alpha', keystore })
  await store.close()
  const node = createMeshNode({
    dataDir,
    // A monitoring client keeps its connection: it needs no new descriptor to ask.
    http: { port: 0, connections: { keepAliveTimeoutMs: 120_000, idleTimeoutMs: 120_000 } },
    logger: silentLogger(),
    store: { probeIntervalMs: 50 },
    discovery: { intervalMs: 60_000 },
  })
  await node.start()
  t.after(() => node.stop())
  return { node, architect: await keystore.load('alpha-architect') }
}

/** GET over one kept-alive socket: status and body. */
function monitor(t: TestContext, base: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => agent.destroy())
  return (path: string) =>
    new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const req = request(`${base}${path}`, { agent }, (res) => {
        let text = ''
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString()
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
      })
      req.on('error', reject)
      req.end()
    })
}

async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 25))
}

describe('store health and recovery', () => {
  it('after descriptor exhaustion reports 503 on /api/health, then recovers without a restart', {
    timeout: 60_000,
  }, async (t) => {
    const { node, architect } = await startNode(t)
    const health = monitor(t, node.httpUrl)
    assert.equal((await health('/api/health')).status, 200)
    await signIn(node.httpUrl, architect)

    // The attack's effect: every descriptor of the process taken.
    const held: number[] = []
    t.after(() => {
      for (const fd of held.splice(0)) closeSync(fd)
    })
    const exhaust = () => {
      try {
        for (;;) held.push(openSync('/dev/null', 'r'))
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'EMFILE')
      }
    }
    exhaust()
    // Writes go on until LevelDB needs a new file (a log for the next memtable): it fails.
    // A descriptor the process frees meanwhile (a socket closing) is taken again at once,
    // so LevelDB cannot slip into it.
    const filler = 'x'.repeat(64 * 1024)
    let failed: unknown
    for (let i = 0; i < 2000 && failed === undefined; i++) {
      exhaust()
      await node.store
        .sublevel('meta')
        .put(`filler-${i}`, filler)
        .catch((err: unknown) => {
          failed = err
        })
    }
    assert.ok(failed !== undefined, 'the store kept writing without descriptors')

    await waitFor(async () => (await health('/api/health')).status === 503)
    const down = await health('/api/health')
    const error = down.body.error as { code: string; details: { status: string; store: { status: string } } }
    assert.equal(error.code, 'MESH_UNAVAILABLE')
    assert.equal(error.details.status, 'unhealthy')
    assert.equal(error.details.store.status, 'unhealthy')

    // The attacker leaves.
    for (const fd of held.splice(0)) closeSync(fd)
    await waitFor(async () => (await health('/api/health')).status === 200)
    assert.equal((await health('/api/health')).body.status, 'ok')
    const session = await signIn(node.httpUrl, architect)
    assert.equal((await session.get<{ did: string }>('/api/me')).did, architect.did)
  })

  it('a store LevelDB keeps failing is reopened by the monitor until it works', async (t) => {
    const root = await tempDir(t)
    const store = new MeshStore({ path: join(root, 'db') })
    await store.open()
    t.after(() => store.close())
    const monitor = new StoreMonitor({ store, intervalMs: 60_000 })
    assert.equal((await monitor.check()).status, 'ok')
    // A database that stays failed until reopened: closed under the node's feet.
    await (store.sublevel('meta').db as unknown as { close(): Promise<void> }).close()
    await assert.rejects(store.sublevel('meta').put('k', 1))
    const seen: string[] = []
    monitor.onChange((h) => seen.push(h.status))
    // The first check finds it failing; the next reopens it.
    assert.equal((await monitor.check()).status, 'unhealthy')
    assert.equal((await monitor.check()).status, 'ok')
    assert.deepEqual(seen, ['unhealthy', 'ok'])
    await store.sublevel('meta').put('k', 1)
    assert.equal(await store.sublevel('meta').get('k'), 1)
  })
})
