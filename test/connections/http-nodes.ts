import assert from 'node:assert/strict'
import { until } from '../rooms/helpers.ts'
import { decide, FAST, startNode, statusAt, type TestNode } from './nodes.ts'

/** Phase-1 HTTP federation (SPEC §12): two of our nodes that libp2p cannot join. */

/** A TCP port free now (libp2p listens there; the node announces an address nobody can dial). */
export { freePort } from '../fixtures/ports.ts'

/** A node whose libp2p listens on `port` but announces a dead address: no peer can dial it. */
export async function unreachable(
  t: Parameters<typeof startNode>[0],
  name: string,
  port: number,
  init: Parameters<typeof startNode>[2] = {},
) {
  return startNode(t, name, {
    listen: [`/ip4/127.0.0.1/tcp/${port}`],
    announce: ['/ip4/127.0.0.1/udp/1/quic-v1'],
    connections: { ...FAST, httpFallback: { failuresBeforeHttp: 1, pollIntervalMs: 200 } },
    rooms: { syncIntervalMs: 500 },
    ...init,
  })
}

/**
 * `a` requests a connection with `b` and `b` accepts, both over HTTP (`a` knows `b`'s
 * HTTP base as `mesh connect <url>` would learn it); returns the connection id.
 */
export async function connectOverHttp(a: TestNode, b: TestNode): Promise<string> {
  assert.equal(await a.node.httpFederation.peers.learn(b.node.did, b.node.httpUrl), true)
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
  return id
}
