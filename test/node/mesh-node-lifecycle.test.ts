import assert from 'node:assert/strict'
import { access } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { HumanKeystore } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { initMesh, STORE_DIR } from '../../src/mesh-info.ts'
import { createMeshNode, NODE_ADDRESS_FILE } from '../../src/mesh-node.ts'
import { MeshStore } from '../../src/store/index.ts'
import { tempDir } from '../fixtures/principals.ts'

async function meshDir(t: TestContext, name: string): Promise<string> {
  const root = await tempDir(t)
  const dataDir = join(root, name)
  const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
  await store.open()
  await initMesh({ store, dataDir, name, keystore: new HumanKeystore(join(root, 'keys')) })
  await store.close()
  return dataDir
}

/** A port something else listens on, for as long as the test runs. */
async function takenPort(t: TestContext): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const address = server.address()
  assert.ok(typeof address === 'object' && address !== null)
  return address.port
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  )

describe('MeshNode lifecycle', () => {
  it('unwinds a start that fails late (HTTP port taken): the data dir starts again at once', async (t) => {
    const dataDir = await meshDir(t, 'late')
    const failing = createMeshNode({ dataDir, http: { port: await takenPort(t) }, logger: silentLogger() })
    await assert.rejects(failing.start(), { code: 'MESH_CONFLICT', message: /is already in use/ })
    assert.equal(failing.status, 'stopped')
    assert.throws(() => failing.store, /node is not started/)
    assert.throws(() => failing.connections, /node is not started/)
    // The store (its LevelDB lock) and the rest were released: the same data dir starts.
    const again = createMeshNode({ dataDir, http: { port: 0 }, logger: silentLogger() })
    await again.start()
    t.after(() => again.stop())
    assert.equal(again.status, 'started')
  })

  it('leaves nothing set after stop, removes its address file, and stops once', async (t) => {
    const dataDir = await meshDir(t, 'done')
    const node = createMeshNode({ dataDir, http: { port: 0 }, logger: silentLogger() })
    await node.start()
    assert.equal(await exists(join(dataDir, NODE_ADDRESS_FILE)), true)
    await node.stop()
    assert.equal(node.status, 'stopped')
    assert.equal(await exists(join(dataDir, NODE_ADDRESS_FILE)), false)
    for (const read of [
      () => node.did,
      () => node.rooms,
      () => node.roomSync,
      () => node.audit,
      () => node.httpUrl,
    ]) {
      assert.throws(read, /node is not started/)
    }
    await node.stop()
    assert.equal(node.status, 'stopped')
  })
})
