/**
 * Reachable by URL (SPEC §10), the node's side: `POST /api/connections {target: <url>}`
 * fetches and verifies the manifest itself (the CLI's resolve is only how it learns the
 * did), so a tampered manifest is refused there too, an act naming another mesh than the
 * manifest's is refused, and a good URL leads to a connection dialled at the manifest's
 * addresses.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import type { MeshManifest } from '../../src/manifest/index.ts'
import { rejectsWithCode } from '../fixtures/codes.ts'
import { until } from '../rooms/helpers.ts'
import { decide, startNode, statusAt } from './nodes.ts'

describe('POST /api/connections with a URL target (SPEC §10)', () => {
  it('refuses a tampered manifest and an act for another mesh; connects by a good URL', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    const real = b.node.manifest()
    const tampered: MeshManifest = { ...real, name: 'not-beta' }
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(tampered))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => {
      server.closeAllConnections()
      server.close()
    })
    const tamperUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const connect = async (target: string, did = b.node.did) =>
      a.api.post<{ id: string; status: string }>('/api/connections', {
        target,
        ucan: await a.act('mesh/connect', did),
      })

    await rejectsWithCode(connect(tamperUrl), 'MESH_SIGNATURE_MISMATCH')
    await rejectsWithCode(
      a.api.get(`/api/connections/resolve?url=${encodeURIComponent(tamperUrl)}`),
      'MESH_SIGNATURE_MISMATCH',
    )
    // The act names alpha itself, the URL leads to beta: the act does not cover it.
    await rejectsWithCode(connect(b.node.httpUrl, a.node.did), 'MESH_UCAN_INVALID')
    await rejectsWithCode(a.api.get('/api/connections/resolve?url=ftp%3A%2F%2Fx'), 'MESH_BAD_REQUEST')
    assert.deepEqual(await a.connections(), [])

    const { id } = await connect(`${b.node.httpUrl}/`)
    await until(async () => (await statusAt(b, id))?.status === 'pending', 'request arrives')
    await decide(b, id, 'accept')
    await until(async () => (await statusAt(a, id))?.status === 'accepted', 'accepted')
  })
})
