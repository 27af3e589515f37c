import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { HumanKeystore } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { initMesh, STORE_DIR } from '../../src/mesh-info.ts'
import { createMeshNode, type MeshNode } from '../../src/mesh-node.ts'
import { RegistryServer } from '../../src/registry-server.ts'
import { MeshStore } from '../../src/store/index.ts'

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** A raw HTTP request: fetch may not set Host, and a browser's Origin is what is under test. */
function send(
  url: string,
  init: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<Answer> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: hostname, port, method: init.method ?? 'GET', path: init.path, headers: init.headers ?? {} },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(init.body)
  })
}

const codeOf = (a: Answer) => (JSON.parse(a.body) as { error: { code: string } }).error.code

/** What a WebSocket handshake ended in: the HTTP status of a refusal, or the close code after an upgrade. */
function handshake(
  url: string,
  headers: Record<string, string>,
): Promise<{ refused?: number; closed?: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    ws.on('unexpected-response', (_req, res) => {
      resolve({ refused: res.statusCode ?? 0 })
      res.resume()
      ws.terminate()
    })
    ws.on('close', (code) => resolve({ closed: code }))
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err)
    })
  })
}

describe('Host and Origin checks, auth before validation, CSP (a real node on port 0)', () => {
  let node: MeshNode
  let root: string
  let base: string
  let own: string

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mesh-web-'))
    const dataDir = join(root, 'alpha')
    const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
    await store.open()
    await initMesh({ store, dataDir, name: 'alpha', keystore: new HumanKeystore(join(root, 'keys')) })
    await store.close()
    node = createMeshNode({
      dataDir,
      http: { host: '127.0.0.1', port: 0, allowedHosts: ['mesh.example.org'] },
      logger: silentLogger(),
    })
    await node.start()
    base = node.httpUrl
    own = new URL(base).host
  })
  after(async () => {
    await node?.stop()
    await rm(root, { recursive: true, force: true })
  })

  it('refuses a rebound Host on /metrics and the API, and answers its own names', async () => {
    for (const path of ['/metrics', '/api/health', '/api/rooms']) {
      const evil = await send(base, { path, headers: { host: `evil.example:${new URL(base).port}` } })
      assert.equal(evil.status, 403, path)
      assert.equal(codeOf(evil), 'MESH_FORBIDDEN')
      assert.doesNotMatch(evil.body, /mesh_http_requests_total/)
    }
    for (const host of [own, `localhost:${new URL(base).port}`, 'mesh.example.org', 'MESH.example.org:443']) {
      const ok = await send(base, { path: '/metrics', headers: { host } })
      assert.equal(ok.status, 200, host)
    }
  })

  it('refuses a WebSocket upgrade from a foreign Origin; no Origin or its own one reach the endpoint', async () => {
    const url = `${base.replace('http', 'ws')}/yjs/room-abcdefgh`
    assert.deepEqual(await handshake(url, { origin: 'https://evil.example' }), { refused: 403 })
    // Upgraded, then closed for the missing token: the endpoint itself answered.
    assert.deepEqual(await handshake(url, {}), { closed: 4401 })
    assert.deepEqual(await handshake(url, { origin: base }), { closed: 4401 })
  })

  it('refuses cross-origin state changes; public reads get CORS *', async () => {
    const post = await send(base, {
      method: 'POST',
      path: '/api/rooms',
      headers: { origin: 'https://evil.example', 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x' }),
    })
    assert.equal(post.status, 403)
    assert.equal(codeOf(post), 'MESH_FORBIDDEN')
    const opaque = await send(base, { method: 'POST', path: '/api/session', headers: { origin: 'null' } })
    assert.equal(opaque.status, 403)
    // Its own origin goes on to authentication.
    const same = await send(base, {
      method: 'POST',
      path: '/api/rooms',
      headers: { origin: base, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x' }),
    })
    assert.equal(same.status, 401)
    for (const path of ['/api/meshes/public', '/.well-known/mesh-manifest.json']) {
      const read = await send(base, { path, headers: { origin: 'https://registry-browser.example' } })
      assert.equal(read.status, 200, path)
      assert.equal(read.headers['access-control-allow-origin'], '*')
    }
    const metrics = await send(base, { path: '/metrics', headers: { origin: 'https://evil.example' } })
    assert.equal(metrics.status, 403)
  })

  it('answers a bad body without a session with 401, not the schema', async () => {
    const routes: Array<[string, string]> = [
      ['POST', '/api/rooms'],
      ['POST', '/api/rooms/room-abcdefgh/messages'],
      ['POST', '/api/rooms/room-abcdefgh/share'],
      ['POST', '/api/me/federated-dms'],
      ['POST', '/api/connections'],
      ['PUT', '/api/federation/policy'],
      ['PUT', '/api/trust/did:key:z6Mkbogus'],
      ['POST', '/api/keys/rotate'],
    ]
    for (const [method, path] of routes) {
      const res = await send(base, {
        method,
        path,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ bogus: 'x'.repeat(10) }),
      })
      assert.equal(res.status, 401, `${method} ${path}: ${res.body}`)
      assert.equal(codeOf(res), 'MESH_UNAUTHENTICATED')
      assert.doesNotMatch(res.body, /bogus|additional|must have/)
    }
  })

  it('serves the console with a CSP that connects only to its own origin', async () => {
    const page = await send(base, { path: '/', headers: { accept: 'text/html' } })
    const csp = String(page.headers['content-security-policy'])
    assert.match(csp, /connect-src 'self'(;|$)/)
    assert.doesNotMatch(csp, /\bwss?:/)
  })
})

describe('registry Host check', () => {
  it('refuses a rebound Host on a registry bound to 0.0.0.0, answers its own address', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mesh-web-registry-'))
    t.after(() => rm(dataDir, { recursive: true, force: true }))
    const registry = new RegistryServer({
      dataDir,
      http: { host: '0.0.0.0', port: 0 },
      logger: silentLogger(),
    })
    await registry.start()
    t.after(() => registry.stop())
    const evil = await send(registry.url, { path: '/metrics', headers: { host: 'evil.example' } })
    assert.equal(evil.status, 403)
    assert.equal(codeOf(evil), 'MESH_FORBIDDEN')
    const port = new URL(registry.url).port
    for (const host of [`127.0.0.1:${port}`, `0.0.0.0:${port}`, `localhost:${port}`]) {
      const own = await send(registry.url, { path: '/api/health', headers: { host } })
      assert.equal(own.status, 200, host)
    }
    const ok = await send(registry.url, {
      path: '/api/meshes/public',
      headers: { origin: 'https://browser.example' },
    })
    assert.equal(ok.status, 200)
    assert.equal(ok.headers['access-control-allow-origin'], '*')
  })
})
