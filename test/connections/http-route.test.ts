import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DeliveryError, HttpRoute } from '../../src/connections/index.ts'

const PEER = 'did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH'
const REPLY = new TextEncoder().encode(JSON.stringify({ v: 1, type: 'connect.ack', signature: 'x' }))

/** An HttpRoute over a fake fetch that records what it was asked; `base` known for PEER. */
function route(options: { base?: string; status?: number; body?: unknown } = {}) {
  const posts: string[] = []
  let now = 1_000_000
  const fetch = (async (url: string | URL | Request) => {
    posts.push(String(url))
    return new Response(options.body === undefined ? REPLY : JSON.stringify(options.body), {
      status: options.status ?? 200,
    })
  }) as typeof globalThis.fetch
  const r = new HttpRoute({
    peers: { get: async (did) => (did === PEER ? options.base : undefined) },
    failuresBeforeHttp: 2,
    libp2pRetryMs: 30_000,
    now: () => now,
    fetch,
  })
  return { r, posts, advance: (ms: number) => (now += ms) }
}

const refused = () =>
  Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))
const noAddress = () => Promise.reject(new DeliveryError('no-address', 'MESH_UNAVAILABLE', 'no address'))
const libp2pOk = async () => new Uint8Array([1])
const send = (over: () => Promise<Uint8Array>, connected = false) => ({
  peer: PEER,
  key: PEER,
  type: 'connect.accept',
  bytes: new Uint8Array([123, 125]),
  connected: () => connected,
  viaLibp2p: over,
})

describe('HttpRoute: the outbox’s libp2p → HTTP choice (SPEC §12)', () => {
  it('posts at once when libp2p has no address, after the threshold when dials fail, and to the type’s path', async () => {
    const { r, posts } = route({ base: 'http://peer.example' })
    assert.deepEqual(new Uint8Array(await r.send(send(noAddress))), REPLY)
    assert.deepEqual(posts, ['http://peer.example/connections/accepted'])

    const second = route({ base: 'http://peer.example' })
    await assert.rejects(second.r.send(send(refused)), (e: DeliveryError) => e.kind === 'connect-refused')
    assert.equal(second.posts.length, 0, 'one failed dial is not yet the threshold')
    assert.deepEqual(new Uint8Array(await second.r.send(send(refused))), REPLY)
    assert.equal(second.r.via(PEER), 'http')
  })

  it('stays on HTTP, then goes back to libp2p when it connects or the retry window passed', async () => {
    const { r, posts, advance } = route({ base: 'http://peer.example' })
    await r.send(send(noAddress))
    let dialled = 0
    const counting = async () => {
      dialled++
      return libp2pOk()
    }
    await r.send(send(counting))
    assert.equal(dialled, 0, 'on HTTP: libp2p not tried')
    assert.equal(posts.length, 2)
    // libp2p connected: it is used at once, and the peer is back on it.
    assert.deepEqual(await r.send(send(counting, true)), new Uint8Array([1]))
    assert.equal(r.via(PEER), 'libp2p')
    // After another fallback, the window passing brings libp2p back too.
    await r.send(send(noAddress))
    advance(31_000)
    assert.equal(r.via(PEER), 'libp2p')
    await r.send(send(counting))
    assert.equal(dialled, 2)
  })

  it('without an HTTP base, libp2p’s error stands; a plain error or a 404 from the peer is classified', async () => {
    const none = route()
    await assert.rejects(none.r.send(send(noAddress)), (e: DeliveryError) => e.kind === 'no-address')
    const plain = route({
      base: 'http://peer.example',
      status: 403,
      body: { error: { code: 'MESH_POLICY_REJECTED', message: 'no', details: {} } },
    })
    await assert.rejects(
      plain.r.send(send(noAddress)),
      (e: DeliveryError) => e.kind === 'remote-refused' && e.code === 'MESH_POLICY_REJECTED',
    )
    const missing = route({
      base: 'http://peer.example',
      status: 404,
      body: { error: { code: 'MESH_NOT_FOUND', message: 'no route', details: {} } },
    })
    await assert.rejects(missing.r.send(send(noAddress)), (e: DeliveryError) => e.kind === 'protocol-version')
  })
})
