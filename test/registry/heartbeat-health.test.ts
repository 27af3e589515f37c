import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { HeartbeatClient, type PublicMesh } from '../../src/registry/index.ts'
import { alice, tempStore } from '../fixtures/principals.ts'
import { listenTestRegistry } from './registry-fixtures.ts'

/** No admission stamp: the content callback is counted, and a stamp asked for re-sends. */
async function registryUrl(t: TestContext): Promise<string> {
  return (await listenTestRegistry(t, await tempStore(t), { heartbeatIntervalMs: 60_000 })).url
}

async function statusOf(url: string, did: string): Promise<string | undefined> {
  const { meshes } = (await (await fetch(`${url}/api/meshes/public?limit=100`)).json()) as {
    meshes: PublicMesh[]
  }
  return meshes.find((m) => m.did === did)?.status
}

describe('heartbeats of a node whose store fails', () => {
  it('say offline while the node is unhealthy, even with the store refusing writes, and online again after', async (t) => {
    const url = await registryUrl(t)
    const store = await tempStore(t)
    let healthy = true
    let contentCalls = 0
    const client = new HeartbeatClient({
      key: alice,
      registryUrl: url,
      store,
      content: () => {
        contentCalls++
        return {
          name: 'alice',
          multiaddrs: [],
          members: 1,
          bots: 0,
          rooms: 0,
          version: '0.1.0',
          protocolVersions: [],
        }
      },
      healthy: () => healthy,
    })
    assert.equal((await client.beat()).ok, true)
    assert.equal(await statusOf(url, alice.did), 'online')

    healthy = false
    const db = store.sublevel('meta').db as unknown as { close(): Promise<void>; open(): Promise<void> }
    await db.close()
    const down = await client.beat()
    assert.equal(down.ok, true, JSON.stringify(down))
    assert.equal(await statusOf(url, alice.did), 'offline')
    assert.equal(contentCalls, 1, 'the last content was reused, not read from the failing store')

    await db.open()
    await store.sublevel('registry').open()
    healthy = true
    assert.equal((await client.beat()).ok, true)
    assert.equal(await statusOf(url, alice.did), 'online')
  })
})
