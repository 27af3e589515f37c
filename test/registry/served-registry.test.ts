import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { computePow } from '../../src/registry/index.ts'
import { startNode } from '../connections/nodes.ts'
import { signedFor } from './registry-fixtures.ts'

describe('a node serving a registry (mesh start --serve-registry)', () => {
  it('applies MeshNodeInit.registry: admission stamps and the per-source limit', async (t) => {
    const { node } = await startNode(t, 'host', {
      serveRegistry: true,
      registry: { powBits: 6, perSource: { max: 3, windowMs: 60_000 } },
    })
    const post = async (body: unknown) => {
      const response = await fetch(`${node.httpUrl}/api/meshes/heartbeat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      return {
        status: response.status,
        code: ((await response.json()) as { error?: { code: string } }).error?.code,
      }
    }
    const key = Ed25519KeyPair.generate()
    assert.deepEqual(await post(signedFor(key, Date.now())), { status: 403, code: 'MESH_FORBIDDEN' })
    const pow = await computePow(key.did, 6)
    assert.deepEqual(await post(signedFor(key, Date.now(), { seq: 2, pow })), {
      status: 200,
      code: undefined,
    })
    assert.deepEqual(await post(signedFor(key, Date.now(), { seq: 3 })), { status: 200, code: undefined })
    assert.deepEqual(await post(signedFor(key, Date.now(), { seq: 4 })), {
      status: 429,
      code: 'MESH_RATE_LIMITED',
    })
    const list = await fetch(`${node.httpUrl}/api/meshes/public?status=online&sort=age`)
    assert.ok(
      ((await list.json()) as { meshes: Array<{ did: string }> }).meshes.some((m) => m.did === key.did),
    )
  })
})
