/**
 * Reachable by URL (SPEC §10), across processes and through the CLI: `mesh connect
 * http://127.0.0.1:PORT` works from the URL alone (the manifest there names the did and
 * the addresses to dial), and a tampered copy of the manifest, served by a tiny HTTP
 * server, is refused with MESH_SIGNATURE_MISMATCH before anything is asked of anyone.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import { waitFor } from '../../scripts/lib/processes.ts'
import type { MeshUrlView } from '../../src/api/index.ts'
import type { ConnectionView } from '../../src/connections/index.ts'
import type { MeshManifest } from '../../src/manifest/index.ts'
import { type CliMesh, connectionView, e2e, startCliMeshes } from '../fixtures/e2e.ts'

describe('mesh connect <url> across processes (SPEC §10)', () => {
  it('connects from the URL alone; a tampered manifest is refused', async (t) => {
    const e = await e2e(t, 'mesh-connect-url-', { logLevel: 'warn' })
    const { cli, run } = e
    const [alpha, beta, gamma] = (await startCliMeshes(e, ['alpha', 'beta', 'gamma'])) as [
      CliMesh,
      CliMesh,
      CliMesh,
    ]
    const betaUrl = beta.proc?.http as string

    // A tiny server serving beta's manifest, tampered three ways, and gamma's untouched.
    const real = (await (await fetch(`${betaUrl}/.well-known/mesh-manifest.json`)).json()) as MeshManifest
    const gammaManifest = (await (
      await fetch(`${gamma.proc?.http}/.well-known/mesh-manifest.json`)
    ).json()) as MeshManifest
    const copies: Record<string, unknown> = {
      // the body changed: another address to dial
      '/changed/.well-known/mesh-manifest.json': {
        ...real,
        endpoints: { ...real.endpoints, libp2p: [`/ip4/127.0.0.1/tcp/9/p2p/${real.peerId}`] },
      },
      // beta's content under gamma's signature
      '/other-key/.well-known/mesh-manifest.json': { ...real, signature: gammaManifest.signature },
      // gamma's did and key on beta's signed content
      '/other-did/.well-known/mesh-manifest.json': { ...real, did: gamma.did, peerId: gammaManifest.peerId },
    }
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(copies[req.url as string] ?? null))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => {
      server.closeAllConnections()
      server.close()
    })
    const tamper = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    for (const path of ['changed', 'other-key', 'other-did']) {
      const refused = await run(alpha, 'connect', `${tamper}/${path}`)
      assert.notEqual(refused.code, 0, path)
      assert.equal(
        refused.out.error?.code,
        'MESH_SIGNATURE_MISMATCH',
        `${path}: ${JSON.stringify(refused.out)}`,
      )
    }
    assert.deepEqual(await cli<ConnectionView[]>(alpha, 'connections'), [], 'nothing was asked')

    // What the URL says, as the node verified it.
    const view = await (alpha.api as NonNullable<CliMesh['api']>).call('resolveMeshUrl', {
      query: { url: `${betaUrl}/.well-known/mesh-manifest.json` },
    })
    const expected: Partial<MeshUrlView> = { did: beta.did as string, name: 'beta' }
    assert.deepEqual({ did: view.did, name: view.name }, expected)
    assert.ok(view.multiaddrs.length > 0 && view.multiaddrs.every((a) => a.endsWith(`/p2p/${real.peerId}`)))

    // From the URL alone: alpha knows nothing of beta but its HTTP address.
    const asked = await cli<{ id: string; status: string }>(alpha, 'connect', betaUrl, '--note', 'by url')
    assert.equal(asked.status, 'pending')
    await waitFor(async () => (await connectionView(beta, asked.id))?.status === 'pending', 'beta is asked')
    await cli(beta, 'accept', asked.id)
    await waitFor(async () => (await connectionView(alpha, asked.id))?.status === 'accepted', 'accepted')
    const peers = await cli<Array<{ did: string; name: string | null; state: string }>>(alpha, 'peers')
    assert.equal(peers.find((p) => p.did === beta.did)?.name, 'beta')
  })
})
