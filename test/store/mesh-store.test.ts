import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { Level } from 'level'
import { MeshStore, STORE_SCHEMA_VERSION } from '../../src/store/index.ts'
import { tempDir } from '../fixtures/principals.ts'

/** A store path in a temp dir removed when the test file ends (test/fixtures/principals.ts). */
async function tempPath(t: TestContext): Promise<string> {
  return join(await tempDir(t, 'mesh-store-'), 'db')
}

describe('MeshStore', () => {
  it('writes the schema version on first open and accepts it on reopen', async (t) => {
    const path = await tempPath(t)
    const store = new MeshStore({ path })
    await store.open()
    assert.equal(await store.sublevel('meta').get('schema-version'), STORE_SCHEMA_VERSION)
    await store.sublevel('registry').put('a', { x: 1 })
    await store.close()
    const again = new MeshStore({ path })
    t.after(() => again.close())
    await again.open()
    assert.deepEqual(await again.sublevel('registry').get('a'), { x: 1 })
  })

  it('refuses a store written with another schema version and leaves it untouched', async (t) => {
    const path = await tempPath(t)
    const raw = new Level<string, unknown>(path, { valueEncoding: 'json' })
    await raw.sublevel<string, unknown>('meta', { valueEncoding: 'json' }).put('schema-version', 99)
    await raw.close()
    const store = new MeshStore({ path })
    await assert.rejects(store.open(), { code: 'MESH_STORE_VERSION' })
    const check = new Level<string, unknown>(path, { valueEncoding: 'json' })
    assert.equal(
      await check.sublevel<string, unknown>('meta', { valueEncoding: 'json' }).get('schema-version'),
      99,
    )
    await check.close()
  })

  it('loses no acknowledged batch and keeps no half batch when SIGKILLed mid-write', async (t) => {
    const path = await tempPath(t)
    const child = spawn(process.execPath, [new URL('./crash-writer.ts', import.meta.url).pathname, path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let acknowledged = -1
    let buffered = ''
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString()
        const lines = buffered.split('\n')
        buffered = lines.pop() ?? ''
        for (const line of lines) acknowledged = Number(line)
        if (acknowledged >= 300) resolve()
      })
    })
    child.kill('SIGKILL')
    await new Promise((resolve) => child.once('exit', resolve))

    const store = new MeshStore({ path })
    await store.open()
    const registry = new Map<string, unknown>()
    for await (const [k, v] of store.sublevel('registry').iterator()) registry.set(k, v)
    const discovery = new Map<string, unknown>()
    for await (const [k, v] of store.sublevel('discovery').iterator()) discovery.set(k, v)
    await store.close()

    assert.ok(registry.size >= acknowledged + 1, `${registry.size} records, ${acknowledged + 1} acknowledged`)
    assert.equal(registry.size, discovery.size, 'every batch is whole: both halves or neither')
    for (const [key, value] of registry) {
      assert.equal((value as { body: string }).body.length, 2048)
      assert.ok(discovery.has(key))
    }
  })
})
