import assert from 'node:assert/strict'
import { copyFile, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { HumanKeystore } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { initMesh, meshStore, STORE_DIR } from '../../src/mesh-info.ts'
import { createMeshNode } from '../../src/mesh-node.ts'
import { MeshStore } from '../../src/store/index.ts'
import { tempDir } from '../fixtures/principals.ts'

async function initialised(t: TestContext) {
  const root = await tempDir(t)
  const dataDir = join(root, 'alpha')
  const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
  await store.open()
  const { info } = await initMesh({
    store,
    dataDir,
    name: 'alpha',
    keystore: new HumanKeystore(join(root, 'keys')),
  })
  await store.close()
  return { dataDir, architect: info.architectDid }
}

const node = (dataDir: string) => createMeshNode({ dataDir, http: { port: 0 }, logger: silentLogger() })

describe('a store that lost its CURRENT file', () => {
  it('is refused at start with MESH_STORE_DAMAGED, and its tables and logs are left as they were', async (t) => {
    const { dataDir, architect } = await initialised(t)
    const first = node(dataDir)
    await first.start()
    const room = await first.rooms.create({ name: 'keep', creator: architect })
    const { id } = await first.rooms.post(room.id, architect, 'written before the damage')
    await first.stop()

    const db = join(dataDir, STORE_DIR)
    await copyFile(join(db, 'CURRENT'), join(dataDir, 'CURRENT.saved'))
    await rm(join(db, 'CURRENT'))
    const before = (await readdir(db)).filter((f) => /\.(ldb|log)$/.test(f)).sort()
    assert.ok(before.length > 0)

    const damaged = node(dataDir)
    await assert.rejects(damaged.start(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MESH_STORE_DAMAGED')
      assert.match(err.message, /missing its CURRENT file/)
      assert.match(err.message, /restore it from backup/)
      return true
    })
    assert.deepEqual((await readdir(db)).filter((f) => /\.(ldb|log)$/.test(f)).sort(), before)

    // Put back, the store opens with everything in it: nothing was deleted.
    await copyFile(join(dataDir, 'CURRENT.saved'), join(db, 'CURRENT'))
    const restored = node(dataDir)
    await restored.start()
    t.after(() => restored.stop())
    const messages = await restored.rooms.messages(room.id, architect)
    assert.ok(JSON.stringify(messages).includes(id))
  })

  it('an existing mesh whose store directory is gone is refused too, not given an empty store', async (t) => {
    const { dataDir } = await initialised(t)
    await rm(join(dataDir, STORE_DIR), { recursive: true })
    const store = await meshStore(dataDir)
    await assert.rejects(store.open(), { code: 'MESH_STORE_DAMAGED' })
    await assert.rejects(readdir(join(dataDir, STORE_DIR)), { code: 'ENOENT' })
  })
})
