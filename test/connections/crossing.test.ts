import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { ConnectionView } from '../../src/connections/index.ts'
import { until } from '../rooms/helpers.ts'
import { decide, requestConnection, startNode, type TestNode } from './nodes.ts'

/** Connections that are not over: pending or accepted. */
const open = (list: ConnectionView[]) => list.filter((c) => c.status === 'pending' || c.status === 'accepted')

/** Both meshes ask each other to connect at once; resolves once each holds one accepted connection, the same. */
async function cross(t: TestContext, autoAccept: boolean): Promise<{ a: TestNode; b: TestNode; id: string }> {
  const a = await startNode(t, 'alpha')
  const b = await startNode(t, 'beta')
  for (const n of [a, b]) await n.api.call('patchPolicy', { body: { autoAccept } })
  const asked = await Promise.allSettled([requestConnection(a, b), requestConnection(b, a)])
  // Rarely one request lands before the other is made: that one is then refused, naming
  // the request to answer instead (no crossing to resolve), and its human accepts that.
  for (const [i, result] of asked.entries()) {
    if (result.status === 'fulfilled') continue
    const details = (result.reason as { details?: { reason?: string; connectionId?: string } }).details
    assert.ok(
      details?.reason === 'request-received' || details?.reason === 'already-connected',
      String(result.reason),
    )
    if (details.reason === 'request-received' && details.connectionId !== undefined)
      await decide(i === 0 ? a : b, details.connectionId, 'accept')
  }
  let id = ''
  await until(
    async () => {
      const [x, y] = [open(await a.connections()), open(await b.connections())]
      const done =
        x.length === 1 && y.length === 1 && x[0]?.status === 'accepted' && y[0]?.status === 'accepted'
      if (done) id = x[0]?.id ?? ''
      return done && x[0]?.id === y[0]?.id
    },
    'one accepted connection on both sides',
    15_000,
  )
  return { a, b, id }
}

describe('crossing connection requests (A asks B while B asks A)', () => {
  it('end as one accepted connection on both sides: each human asked, so each consented', async (t) => {
    const { a, b, id } = await cross(t, false)
    // The other request is over on the side that made it, and says why.
    for (const n of [a, b]) {
      const others = (await n.connections()).filter((c) => c.id !== id)
      assert.ok(
        others.every((c) => c.status === 'disconnected' || c.status === 'declined'),
        JSON.stringify(others),
      )
    }
    // It stays one: the peers agree, and a new request is refused as already connected.
    const peersA = await a.peers()
    assert.equal(peersA[0]?.state, 'accepted')
    assert.equal(peersA[0]?.connectionId, id)
    const peersB = await b.peers()
    assert.equal(peersB[0]?.connectionId, id)
    await assert.rejects(
      requestConnection(a, b),
      (err) => (err as { code?: string }).code === 'MESH_CONFLICT',
    )
  })

  it('with autoAccept on both sides, still one connection (not two)', async (t) => {
    await cross(t, true)
  })

  it('crosses for sure: alpha asks beta by did (no address yet) and waits; beta’s request reaches it first', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    const x = await a.api.post<{ id: string }>('/api/connections', {
      target: b.node.did,
      ucan: await a.act('mesh/connect', b.node.did),
    })
    const y = await requestConnection(b, a)
    await until(
      async () => {
        const [p, q] = [open(await a.connections()), open(await b.connections())]
        return p.length === 1 && q.length === 1 && p[0]?.status === 'accepted' && p[0]?.id === q[0]?.id
      },
      'one accepted connection on both sides',
      15_000,
    )
    // The smaller id stands, on both sides.
    const [stands] = [x.id, y].sort()
    assert.equal(open(await a.connections())[0]?.id, stands)
    assert.equal(open(await b.connections())[0]?.id, stands)
  })
})
