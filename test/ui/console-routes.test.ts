import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { Registry } from 'prom-client'
import { createHttpApp, registerConsole } from '../../src/http/index.ts'
import { createLogger } from '../../src/log.ts'
import { tempDir } from '../fixtures/principals.ts'

const html = { accept: 'text/html,application/xhtml+xml' }

async function app(t: import('node:test').TestContext, root: string) {
  const a = createHttpApp({ logger: createLogger({ level: 'silent' }), metrics: new Registry() })
  a.get('/api/health', async () => ({ status: 'ok' }))
  registerConsole(a, { root })
  await a.ready()
  t.after(() => a.close())
  return a
}

describe('the console is served at / as a single-page app', () => {
  it('index at / and app paths, hashed assets, JSON 404s for the API, no path traversal', async (t) => {
    const dir = await tempDir(t, 'mesh-ui-root-')
    const root = join(dir, 'ui')
    await mkdir(join(root, 'assets'), { recursive: true })
    await writeFile(join(root, 'index.html'), '<!doctype html><title>console</title>')
    await writeFile(join(root, 'assets', 'index-abc.js'), 'console.log(1)')
    await writeFile(join(dir, 'secret.txt'), 'TOP-SECRET-CONTENT')
    const a = await app(t, root)

    const index = await a.inject({ url: '/', headers: html })
    assert.equal(index.statusCode, 200)
    assert.match(index.headers['content-type'] as string, /^text\/html/)
    assert.match(index.body, /console/)
    assert.match(index.headers['content-security-policy'] as string, /script-src 'self'/)
    assert.equal(index.headers['x-content-type-options'], 'nosniff')

    for (const url of ['/connections/browse', '/rooms/abcdefgh12', '/trust/audit']) {
      const page = await a.inject({ url, headers: html })
      assert.equal(page.statusCode, 200, url)
      assert.match(page.body, /console/)
    }

    const js = await a.inject({ url: '/assets/index-abc.js' })
    assert.equal(js.statusCode, 200)
    assert.match(js.headers['content-type'] as string, /javascript/)
    assert.match(js.headers['cache-control'] as string, /immutable/)

    // The API keeps its own answers and its 404 shape, whatever the Accept header.
    assert.equal((await a.inject({ url: '/api/health', headers: html })).json().status, 'ok')
    for (const url of ['/api/nope', '/yjs', '/.well-known/nothing', '/missing.js', '/assets/nope.js']) {
      const res = await a.inject({ url, headers: html })
      assert.equal(res.statusCode, 404, url)
      assert.equal(res.json().error.code, 'MESH_NOT_FOUND', url)
    }
    // A non-HTML client asking for an app path gets the JSON 404, not a page.
    assert.equal((await a.inject({ url: '/connections' })).statusCode, 404)

    for (const url of [
      '/assets/../../secret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
    ]) {
      const res = await a.inject({ url })
      assert.notEqual(res.statusCode, 200, url)
      assert.doesNotMatch(res.body, /TOP-SECRET/, url)
    }
  })

  it('without a build, / says how to build it and the API still works', async (t) => {
    const dir = await tempDir(t, 'mesh-ui-none-')
    const a = await app(t, join(dir, 'absent'))
    const res = await a.inject({ url: '/', headers: html })
    assert.equal(res.statusCode, 503)
    assert.match(res.body, /npm run build:ui/)
    assert.equal((await a.inject({ url: '/api/health' })).statusCode, 200)
  })
})
