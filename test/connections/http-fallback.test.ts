import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { until } from '../rooms/helpers.ts'
import { autoAcceptRooms, decide, FAST, shareAct, startNode, statusAt, type TestNode } from './nodes.ts'

/** A TCP port free now (libp2p listens there; the node announces an address nobody can dial). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return typeof address === 'object' && address !== null ? address.port : 0
}

/** A node whose libp2p listens on `port` but announces a dead address: no peer can dial it. */
async function unreachable(t: Parameters<typeof startNode>[0], name: string, port: number) {
  return startNode(t, name, {
    listen: [`/ip4/127.0.0.1/tcp/${port}`],
    announce: ['/ip4/127.0.0.1/udp/1/quic-v1'],
    connections: { ...FAST, httpFallback: { failuresBeforeHttp: 1, pollIntervalMs: 200 } },
    rooms: { syncIntervalMs: 500 },
  })
}

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
    // What `mesh connect <url>` (url16) learns from beta's manifest: its HTTP base.
    assert.equal(await a.node.httpFederation.peers.learn(b.node.did, b.node.httpUrl), true)

    // The request has no libp2p address to go to: it is posted to beta's /connections/request.
    const { id } = await a.api.post<{ id: string }>('/api/connections', {
      target: b.node.did,
      ucan: await a.act('mesh/connect', b.node.did),
    })
    await until(async () => (await statusAt(b, id))?.status === 'pending', 'the request at beta')
    // beta learned alpha's HTTP base from the request; its accept goes back over HTTP too.
    // (kept once beta's ack is out: wait for it, not for the pending status alone)
    await until(
      async () => (await b.node.httpFederation.peers.get(a.node.did)) === a.node.httpUrl,
      'beta keeps alpha’s HTTP base',
    )
    await decide(b, id, 'accept')
    await until(async () => (await statusAt(a, id))?.status === 'accepted', 'accepted at alpha')
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
      return stream !== undefined && stream.protocol === '/mesh/rooms/1.0.0' && stream.status === 'open'
        ? a.node.libp2p.getConnections().some((c) => c.streams.includes(stream))
        : false
    }, 'the room link runs over libp2p')
    await b.api.post(`/api/rooms/${room}/messages`, { body: 'over libp2p' })
    await until(async () => (await bodies(a, room)).includes('over libp2p'), 'alpha gets it over libp2p')
  })
})
