import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { until } from '../rooms/helpers.ts'
import { connectOverHttp, freePort, unreachable } from './http-nodes.ts'
import { autoAcceptRooms, shareAct, type TestNode } from './nodes.ts'

async function bodies(node: TestNode, room: string): Promise<string[]> {
  const page = await node.api.get<{ messages: Array<{ body: string }> }>(
    `/api/rooms/${room}/messages?limit=100`,
  )
  return page.messages.map((m) => m.body).sort()
}

describe('phase-1 HTTP federation: two nodes libp2p cannot join (SPEC §12)', () => {
  it('connect, share and converge over HTTP; move to libp2p once it reaches', async (t) => {
    const portB = await freePort()
    const a = await unreachable(t, 'alpha', await freePort())
    const b = await unreachable(t, 'beta', portB)
    await autoAcceptRooms(b)
    // What `mesh connect <url>` (url16) learns from beta's manifest: its HTTP base. The request has
    // no libp2p address to go to: it is posted to beta's /connections/request; the accept comes back over HTTP.
    await connectOverHttp(a, b)
    assert.equal(a.node.libp2p.getConnections().length, 0, 'no libp2p connection at all')

    // A room shared and written on both sides converges over the HTTP tunnel.
    const { id: room } = await a.api.post<{ id: string }>('/api/rooms', { name: 'over-http' })
    await a.api.post(`/api/rooms/${room}/messages`, { body: 'before the share' })
    await a.api.post(`/api/rooms/${room}/share`, {
      mesh: b.node.did,
      ucan: await shareAct(a, room, b.node.did),
    })
    await until(
      async () =>
        (await b.api.get<{ rooms: Array<{ id: string }> }>('/api/rooms')).rooms.some((r) => r.id === room),
      'beta holds the room',
    )
    await b.api.post(`/api/rooms/${room}/join`, {})
    await until(async () => (await bodies(b, room)).includes('before the share'), 'backfill at beta')
    await b.api.post(`/api/rooms/${room}/messages`, { body: 'from beta' })
    await a.api.post(`/api/rooms/${room}/messages`, { body: 'from alpha' })
    const all = ['before the share', 'from alpha', 'from beta']
    await until(async () => JSON.stringify(await bodies(a, room)) === JSON.stringify(all), 'alpha converges')
    await until(async () => JSON.stringify(await bodies(b, room)) === JSON.stringify(all), 'beta converges')
    assert.equal(a.node.libp2p.getConnections().length, 0, 'still no libp2p connection')
    // The reachability probe cannot ping beta over libp2p, but beta answers over HTTP: not degraded.
    for (let i = 0; i < 3; i++) await a.node.connections.probe()
    const peer = (await a.peers()).find((p) => p.did === b.node.did)
    assert.equal(peer?.state, 'accepted', JSON.stringify(peer))

    // libp2p is unblocked (alpha reaches beta's real address): the link moves to it.
    // (a dial joins one under way to the same peer, which may still be looking for an address: again until one gets through)
    const beta = multiaddr(`/ip4/127.0.0.1/tcp/${portB}/p2p/${b.node.peerId}`)
    await until(
      () =>
        a.node.libp2p.dial(beta, { signal: AbortSignal.timeout(5000) }).then(
          () => true,
          () => false,
        ),
      'libp2p reaches beta',
    )
    await until(() => {
      const stream = a.node.roomSync.linkStream(b.node.did)
      return stream !== undefined &&
        stream.protocol?.startsWith('/mesh/rooms/') === true &&
        stream.status === 'open'
        ? a.node.libp2p.getConnections().some((c) => c.streams.includes(stream))
        : false
    }, 'the room link runs over libp2p')
    await b.api.post(`/api/rooms/${room}/messages`, { body: 'over libp2p' })
    await until(async () => (await bodies(a, room)).includes('over libp2p'), 'alpha gets it over libp2p')
  })
})
