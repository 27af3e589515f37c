// SPEC §10 + §12: a peer's URL is enough to start. `mesh connect <url>` learns the peer's
// HTTP base from its manifest; when libp2p cannot reach the peer, the request and what
// follows go over HTTP without anything else being told.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { until } from '../rooms/helpers.ts'
import { freePort, unreachable } from './http-nodes.ts'
import { decide, statusAt } from './nodes.ts'

describe('a mesh named by its URL alone, that libp2p cannot reach (SPEC §10, §12)', () => {
  it('the request goes over HTTP to the base its manifest names; the accept comes back the same way', async (t) => {
    const a = await unreachable(t, 'alpha', await freePort())
    const b = await unreachable(t, 'beta', await freePort())
    // Nothing but beta's URL: no did-to-address, no HTTP base learned by hand.
    assert.equal(await a.node.httpFederation.peers.get(b.node.did), undefined)
    const { id } = await a.api.post<{ id: string }>('/api/connections', {
      target: b.node.httpUrl,
      ucan: await a.act('mesh/connect', b.node.did),
    })
    // The manifest's HTTP base is what the route falls back to.
    assert.equal(await a.node.httpFederation.peers.get(b.node.did), b.node.httpUrl)
    await until(async () => (await statusAt(b, id))?.status === 'pending', 'the request at beta, over HTTP')
    await until(
      async () => (await b.node.httpFederation.peers.get(a.node.did)) === a.node.httpUrl,
      'beta keeps alpha’s HTTP base',
    )
    await decide(b, id, 'accept')
    await until(async () => (await statusAt(a, id))?.status === 'accepted', 'accepted at alpha')
    assert.equal(a.node.libp2p.getConnections().length, 0, 'no libp2p connection at all')
  })
})
