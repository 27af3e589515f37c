import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { HumanKeystore } from '../src/identity/index.ts'
import { silentLogger } from '../src/log.ts'
import { MANIFEST_SCHEMA_URL, type MeshManifest, verifyManifest } from '../src/manifest/index.ts'
import { initMesh, STORE_DIR } from '../src/mesh-info.ts'
import { createMeshNode, NODE_ADDRESS_FILE } from '../src/mesh-node.ts'
import { dhtRecordKey, meshRecordKey } from '../src/p2p/index.ts'
import { MeshStore } from '../src/store/index.ts'
import { tempDir } from './fixtures/principals.ts'
import { waitFor } from './p2p/nodes.ts'

async function startNode(t: TestContext, name: string, bootstrap: string[] = []) {
  const root = await tempDir(t)
  const dataDir = join(root, name)
  const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
  await store.open()
  await initMesh({ store, dataDir, name, keystore: new HumanKeystore(join(root, 'keys')) })
  await store.close()
  const node = createMeshNode({
    dataDir,
    http: { port: 0 },
    logger: silentLogger(),
    discovery: { intervalMs: 500 },
    bootstrap,
  })
  await node.start()
  t.after(() => node.stop())
  return node
}

describe('MeshNode', () => {
  it('serves a manifest that validates against its schema and is signed by the mesh key', async (t) => {
    const node = await startNode(t, 'alpha')
    const manifest = (await (
      await fetch(`${node.httpUrl}/.well-known/mesh-manifest.json`)
    ).json()) as MeshManifest
    const schema = JSON.parse(await readFile(MANIFEST_SCHEMA_URL, 'utf8')) as object
    const ajv = new Ajv2020({ strict: true, allErrors: true })
    addFormats.default(ajv)
    const validate = ajv.compile(schema)
    assert.equal(validate(manifest), true, JSON.stringify(validate.errors))
    assert.equal(manifest.did, node.did)
    assert.equal(manifest.peerId, node.peerId)
    assert.equal(manifest.name, 'alpha')
    assert.equal(verifyManifest(manifest), true)
    assert.equal(verifyManifest({ ...manifest, name: 'mallory' }), false)
    const wrong = { ...manifest, signature: { ...manifest.signature, keyId: 'did:web:mallory.example' } }
    assert.equal(validate(wrong), false)
  })

  it('reports health, metrics and its address file; PeerId and did are one key', async (t) => {
    const node = await startNode(t, 'beta')
    const health = (await (await fetch(`${node.httpUrl}/api/health`)).json()) as Record<string, unknown>
    assert.equal(health.status, 'ok')
    assert.equal(health.did, node.did)
    assert.equal(health.peerId, node.peerId)
    assert.ok(Array.isArray(health.multiaddrs) && health.multiaddrs.length > 0)
    const metrics = await (await fetch(`${node.httpUrl}/metrics`)).text()
    assert.match(metrics, /mesh_http_requests_total/)
    assert.match(metrics, /process_cpu_user_seconds_total/)
    const address = JSON.parse(await readFile(join(node.init.dataDir, NODE_ADDRESS_FILE), 'utf8')) as {
      http: string
    }
    assert.equal(address.http, node.httpUrl)
  })

  it('refuses a second start of the same data dir while the first runs, and restarts after stop', async (t) => {
    const node = await startNode(t, 'gamma')
    const twin = createMeshNode({ dataDir: node.init.dataDir, http: { port: 0 }, logger: silentLogger() })
    await assert.rejects(twin.start())
    assert.equal(twin.status, 'stopped')
    const did = node.did
    await node.stop()
    const again = createMeshNode({ dataDir: node.init.dataDir, http: { port: 0 }, logger: silentLogger() })
    await again.start()
    t.after(() => again.stop())
    assert.equal(again.did, did)
  })

  it('keeps the DHT keys it holds on disk: records it holds survive a stop', async (t) => {
    const node = await startNode(t, 'delta')
    const other = await startNode(t, 'epsilon', node.multiaddrs())
    // epsilon's record, which delta holds for the network
    const recordKey = dhtRecordKey(meshRecordKey(other.did)).toString()
    await waitFor(
      async () => (await node.store.sublevel<string>('dht').keys().all()).includes(recordKey),
      'the first publish to reach the store',
    )
    await node.stop()
    const store = new MeshStore({ path: join(node.init.dataDir, STORE_DIR) })
    await store.open()
    const kept = await store.sublevel<string>('dht').keys().all()
    await store.close()
    assert.ok(kept.includes(recordKey), `${recordKey} in ${kept.join(', ')}`)
    assert.ok(
      kept.every((key) => key.startsWith('/dht/')),
      'only DHT keys, not the peer store',
    )
  })
})
