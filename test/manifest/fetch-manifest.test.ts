/**
 * Reachable by URL (SPEC §10): fetching another mesh's manifest is bounded (size,
 * redirects, time, scheme) and verified (signature by its own did, peerId its key); a
 * tampered copy is refused with MESH_SIGNATURE_MISMATCH.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import {
  dialableAddresses,
  fetchManifest,
  type MeshManifest,
  manifestUrlOf,
  signManifest,
  type UnsignedManifest,
} from '../../src/manifest/index.ts'
import { rejectsWithCode } from '../fixtures/codes.ts'
import { alice, bob } from '../fixtures/principals.ts'

const content: UnsignedManifest = {
  name: 'alpha',
  description: 'a test mesh',
  version: '0.0.0',
  endpoints: {
    http: 'http://127.0.0.1:1',
    libp2p: [
      '/ip4/127.0.0.1/tcp/4001',
      `/ip4/127.0.0.1/tcp/4002/p2p/${alice.peerId().toString()}`,
      `/ip4/127.0.0.1/tcp/4003/p2p/${bob.peerId().toString()}`,
      'not a multiaddr',
    ],
  },
  protocolVersions: [],
  capabilities: [],
  invocation: {},
  agents: [],
  federation: {
    mode: 'open',
    autoAccept: false,
    maxForeignParticipantsPerRoom: 8,
    maxBackfillEventsPerRequest: 100,
  },
  keyHistory: [],
}
const good = signManifest(alice, content)

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** A tiny HTTP server on a loopback port, closed when the test ends; returns its base URL. */
async function serve(t: TestContext, handler: Handler): Promise<string> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const json =
  (value: unknown): Handler =>
  (_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(value))
  }

describe('fetchManifest (reachable by URL, SPEC §10)', () => {
  it('reads and verifies a manifest from a base URL, a base with a path, or the manifest URL, following a redirect', async (t) => {
    const paths: string[] = []
    const base = await serve(t, (req, res) => {
      paths.push(req.url as string)
      if (req.url === '/moved.json') {
        res.statusCode = 302
        res.setHeader('location', '/.well-known/mesh-manifest.json')
        res.end()
        return
      }
      json(good)(req, res)
    })
    for (const url of [
      base,
      `${base}/`,
      `${base}/mesh/`,
      `${base}/.well-known/mesh-manifest.json`,
      `${base}/moved.json`,
    ]) {
      const { manifest } = await fetchManifest(url)
      assert.equal(manifest.did, alice.did)
    }
    assert.deepEqual(paths, [
      '/.well-known/mesh-manifest.json',
      '/.well-known/mesh-manifest.json',
      '/mesh/.well-known/mesh-manifest.json',
      '/.well-known/mesh-manifest.json',
      '/moved.json',
      '/.well-known/mesh-manifest.json',
    ])
  })

  it('refuses a tampered manifest: body changed, signed by another key, did of another mesh', async (t) => {
    const changed = { ...good, name: 'mallory' }
    const otherKey = { ...good, signature: signManifest(bob, content).signature }
    // bob's did and peer id, alice's signature over alice's content
    const otherDid = { ...good, did: bob.did, peerId: bob.peerId().toString() }
    // everything of bob's but a peerId that is not bob's key
    const bobs = signManifest(bob, content)
    const wrongPeer = { ...bobs, peerId: alice.peerId().toString() }
    const cases: Array<[string, unknown]> = [
      ['changed', changed],
      ['other-key', otherKey],
      ['other-did', otherDid],
      ['wrong-peer', wrongPeer],
    ]
    const byPath = new Map(cases.map(([name, body]) => [`/${name}.json`, body]))
    const base = await serve(t, (req, res) => json(byPath.get(req.url as string))(req, res))
    for (const [name] of cases)
      await rejectsWithCode(fetchManifest(`${base}/${name}.json`), 'MESH_SIGNATURE_MISMATCH')
  })

  it('bounds what it reads: size, redirects, time, scheme, status, shape', async (t) => {
    const big = `{"pad":"${'x'.repeat(300 * 1024)}"}`
    const base = await serve(t, (req, res) => {
      switch (req.url) {
        case '/big-declared.json':
          res.setHeader('content-length', String(big.length))
          res.end(big)
          return
        case '/big-chunked.json':
          res.write(big.slice(0, 100_000))
          res.write(big.slice(100_000))
          res.end()
          return
        case '/loop.json':
          res.statusCode = 301
          res.setHeader('location', '/loop.json')
          res.end()
          return
        case '/file.json':
          res.statusCode = 302
          res.setHeader('location', 'file:///etc/passwd')
          res.end()
          return
        case '/slow.json':
          return // never answers
        case '/text.json':
          res.end('not json')
          return
        case '/array.json':
          json([good])(req, res)
          return
        default:
          res.statusCode = 404
          res.end()
      }
    })
    await rejectsWithCode(fetchManifest(`${base}/big-declared.json`), 'MESH_TOO_LARGE')
    await rejectsWithCode(fetchManifest(`${base}/big-chunked.json`), 'MESH_TOO_LARGE')
    await rejectsWithCode(fetchManifest(`${base}/loop.json`), 'MESH_UNAVAILABLE')
    await rejectsWithCode(fetchManifest(`${base}/file.json`), 'MESH_BAD_REQUEST')
    await rejectsWithCode(fetchManifest(`${base}/slow.json`, { timeoutMs: 300 }), 'MESH_UNAVAILABLE')
    await rejectsWithCode(fetchManifest(`${base}/text.json`), 'MESH_BAD_REQUEST')
    await rejectsWithCode(fetchManifest(`${base}/array.json`), 'MESH_BAD_REQUEST')
    await rejectsWithCode(fetchManifest(`${base}/missing.json`), 'MESH_UNAVAILABLE')
    await rejectsWithCode(fetchManifest('ftp://127.0.0.1/x.json'), 'MESH_BAD_REQUEST')
    await rejectsWithCode(fetchManifest('http://user:pw@127.0.0.1/'), 'MESH_BAD_REQUEST')
    await rejectsWithCode(fetchManifest(`http://127.0.0.1/${'a'.repeat(3000)}`), 'MESH_BAD_REQUEST')
    await rejectsWithCode(fetchManifest('http://'), 'MESH_BAD_REQUEST')
    assert.equal(
      manifestUrlOf('https://x.example/base/?q=1#f').toString(),
      'https://x.example/base/.well-known/mesh-manifest.json',
    )
  })

  it('dials only addresses of its own key, each ending in its peer id', () => {
    const peer = alice.peerId().toString()
    assert.deepEqual(dialableAddresses(good as MeshManifest), [
      `/ip4/127.0.0.1/tcp/4001/p2p/${peer}`,
      `/ip4/127.0.0.1/tcp/4002/p2p/${peer}`,
    ])
  })
})
