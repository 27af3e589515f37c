import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { runMesh, waitFor } from '../../scripts/lib/processes.ts'
import type { MeshManifest } from '../../src/manifest/index.ts'
import { type CliMesh, connectionView, e2e, FAST_RETRY, freePort } from '../fixtures/e2e.ts'

// Issue 14 / docs/deploy.md: a mesh run for real — libp2p bound to every interface on a fixed
// port and announced by another address, HTTP on every interface with a public URL — and the
// doc's systemd line using only flags `mesh start` knows.

interface Mesh extends CliMesh {
  httpPort: number
  p2pPort: number
}

/** GET `path` on 127.0.0.1:`port` with a chosen Host header (fetch cannot set Host). */
function getWithHost(port: number, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => (body += d.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('deployment settings', () => {
  it('two meshes bound to 0.0.0.0, announced as 127.0.0.1, with public URLs, connect', async (t) => {
    const { root, start, init, signInArchitect, cli } = await e2e(t, 'mesh-deploy-e2e-', { logLevel: 'warn' })
    const meshes: Mesh[] = []
    for (const name of ['alpha', 'beta']) {
      const m: Mesh = { name, dir: join(root, name), httpPort: await freePort(), p2pPort: await freePort() }
      await init(name, m.dir)
      m.proc = await start([
        'start',
        ...['--data', m.dir, '--http', `0.0.0.0:${m.httpPort}`],
        ...['--listen', `/ip4/0.0.0.0/tcp/${m.p2pPort}`, '--announce', `/ip4/127.0.0.1/tcp/${m.p2pPort}`],
        ...['--public-url', `https://${name}.example/`],
        ...['--discovery-interval', '60000', ...FAST_RETRY, '--probe-interval', '0'],
      ])
      m.api = await signInArchitect(m.proc.http, name)
      m.did = m.proc.did as string
      meshes.push(m)
    }
    const [alpha, beta] = meshes as [Mesh, Mesh]

    for (const m of meshes) {
      const proc = m.proc as NonNullable<Mesh['proc']>
      // Local clients reach the wildcard bind on loopback; only the announced address is given out.
      assert.equal(proc.http, `http://127.0.0.1:${m.httpPort}`)
      assert.deepEqual(proc.listen, [`/ip4/127.0.0.1/tcp/${m.p2pPort}/p2p/${proc.peerId}`])
      // Bound to every interface: 127.0.0.2 (not the bind host) answers too.
      assert.equal((await fetch(`http://127.0.0.2:${m.httpPort}/api/health`)).status, 200)
      const manifest = (await (await fetch(`${proc.http}/.well-known/mesh-manifest.json`)).json()) as {
        manifest?: MeshManifest
      } & Partial<MeshManifest>
      const endpoints = (manifest.manifest ?? manifest).endpoints as MeshManifest['endpoints']
      assert.equal(endpoints.http, `https://${m.name}.example`)
      assert.deepEqual(endpoints.libp2p, proc.listen)
      // The public name is a Host the API answers to (a reverse proxy forwards it); others are not.
      assert.equal((await getWithHost(m.httpPort, `${m.name}.example`, '/api/health')).status, 200)
      const evil = await getWithHost(m.httpPort, 'evil.example', '/api/health')
      assert.equal(evil.status, 403)
    }

    // alpha dials beta by the address beta announces; beta accepts.
    const request = await cli<{ id: string; status: string }>(
      alpha,
      'connect',
      beta.proc?.listen[0] as string,
    )
    await waitFor(
      async () => (await connectionView(beta, request.id))?.status === 'pending',
      'request at beta',
    )
    await cli(beta, 'accept', request.id)
    await waitFor(
      async () =>
        (await connectionView(alpha, request.id))?.status === 'accepted' &&
        (await connectionView(beta, request.id))?.status === 'accepted',
      'accepted on both sides',
    )
  })

  it('docs/deploy.md’s systemd ExecStart uses only flags `mesh start` knows', async () => {
    const doc = await readFile(new URL('../../docs/deploy.md', import.meta.url), 'utf8')
    const execStart = /^ExecStart=(.*)$/m.exec(doc)?.[1] ?? ''
    assert.ok(execStart.includes('src/cli/main.ts start'), 'an ExecStart line running mesh start')
    const flags = [...execStart.matchAll(/(--[a-z-]+)/g)].map((m) => m[1] as string)
    assert.deepEqual(
      flags,
      ['--data', '--listen', '--announce', '--http', '--public-url'],
      'the flags the page documents',
    )
    const help = await runMesh(['start', '--help'])
    assert.equal(help.code, 0)
    for (const flag of flags) assert.match(help.stdout, new RegExp(`${flag} <`), `mesh start ${flag}`)
  })

  it('a --listen, --announce or --public-url that does not parse is MESH_BAD_REQUEST', async () => {
    for (const args of [
      ['--listen', '/ip4/nonsense/tcp/1'],
      ['--announce', 'not-a-multiaddr'],
      ['--public-url', 'ftp://mesh.example.org'],
      ['--public-url', 'https://mesh.example.org/?x=1'],
    ]) {
      const res = await runMesh(['start', '--data', '/nonexistent-mesh-dir', ...args])
      assert.equal(res.code, 1)
      assert.match(res.stderr, /^error MESH_BAD_REQUEST: /, args.join(' '))
      assert.equal(res.stderr.split('\n').filter(Boolean).length, 1, res.stderr)
    }
  })
})
