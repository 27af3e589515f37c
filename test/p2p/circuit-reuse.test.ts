import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import {
  type MeshLibp2pInit,
  openStream,
  relayListenAddress,
  reusableConnection,
} from '../../src/p2p/index.ts'
import { waitFor } from './nodes.ts'
import { ECHO, host, serveEcho } from './relay-hosts.ts'

// circuit churn (SPEC §10): requests to a mesh reached only through a relay reuse the open
// (limited) connection instead of opening a new circuit each.

async function triangle(t: TestContext, relay: MeshLibp2pInit['relay'] = true) {
  const r = await host(t, { relay })
  const relayAddr = r.getMultiaddrs()[0]?.toString() as string
  const h = await host(t, { listen: [relayListenAddress(relayAddr)] })
  const p = await host(t)
  await serveEcho(h, true)
  const target = multiaddr(h.getMultiaddrs()[0]?.toString() as string)
  await p.peerStore.merge(h.peerId, { multiaddrs: [target.decapsulateCode(421)] })
  // the circuits between P and H through R (DCUtR may add a direct connection beside them)
  const circuits = new Set<string>()
  p.addEventListener('connection:open', (e) => {
    if (e.detail.remotePeer.equals(h.peerId) && e.detail.limits !== undefined) circuits.add(e.detail.id)
  })
  return { r, h, p, circuits }
}

/** One request: a small payload echoed back over a stream from `openStream`. */
async function request(
  p: Awaited<ReturnType<typeof host>>,
  h: Awaited<ReturnType<typeof host>>,
): Promise<number> {
  const stream = await openStream(p, h.peerId, ECHO)
  stream.send(new Uint8Array(100).fill(1))
  let read = 0
  for await (const chunk of stream) {
    read += chunk.byteLength
    if (read >= 100) break
  }
  await stream.close().catch(() => {})
  return read
}

describe('circuit reuse (SPEC §10)', () => {
  it('N requests, one after another and at once, to a hidden host over one relay open ONE circuit', async (t) => {
    const { h, p, circuits } = await triangle(t)
    for (let i = 0; i < 10; i++) assert.equal(await request(p, h), 100)
    const together = await Promise.all(Array.from({ length: 10 }, () => request(p, h)))
    assert.deepEqual(together, Array(10).fill(100))
    assert.equal(circuits.size, 1, `circuits opened: ${circuits.size}`)
  })

  it('a cut circuit: the next request opens a new one and works', async (t) => {
    const { h, p, circuits } = await triangle(t)
    assert.equal(await request(p, h), 100)
    const first = p.getConnections(h.peerId).find((c) => c.limits !== undefined) as Connection
    await first.close()
    await waitFor(() => first.status === 'closed', 'the circuit closes')
    assert.equal(await request(p, h), 100)
    assert.equal(await request(p, h), 100)
    assert.equal(circuits.size, 2)
  })

  it('a circuit the relay cut for its byte limit: the next request opens a new one', async (t) => {
    const { h, p, circuits } = await triangle(t, { circuitBytes: 4 * 1024 })
    const first = await openStream(p, h.peerId, ECHO)
    first.send(new Uint8Array(64 * 1024))
    const connection = p.getConnections(h.peerId).find((c) => c.limits !== undefined) as Connection
    await waitFor(() => connection.status !== 'open', 'the relay cuts the circuit')
    assert.equal(await request(p, h), 100)
    assert.equal(circuits.size, 2)
  })

  it("libp2p's own dials (dial, dialProtocol: the DHT, relay discovery) reuse the circuit when they could only open another", async (t) => {
    const { h, p, circuits } = await triangle(t)
    const first = await p.dial(h.peerId)
    assert.ok(first.limits !== undefined)
    assert.equal((await p.dial(h.peerId)).id, first.id)
    assert.equal((await p.dial(multiaddr(h.getMultiaddrs()[0]?.toString() as string))).id, first.id)
    const stream = await p.dialProtocol(h.peerId, ECHO, { runOnLimitedConnection: true })
    await stream.close()
    // a protocol not allowed on limited connections fails on it, and opens no circuit
    await assert.rejects(p.dialProtocol(h.peerId, '/ipfs/kad/1.0.0'))
    assert.equal(circuits.size, 1)
  })

  it('reusableConnection: open unlimited before limited, direct before relayed, never a closing one', () => {
    const c = (id: string, status: string, limited: boolean, direct: boolean) =>
      ({ id, status, direct, limits: limited ? { bytes: 1n } : undefined }) as unknown as Connection
    assert.equal(reusableConnection([]), undefined)
    assert.equal(reusableConnection([c('a', 'closing', false, true)]), undefined)
    assert.equal(reusableConnection([c('a', 'open', true, false), c('b', 'open', false, false)])?.id, 'b')
    assert.equal(reusableConnection([c('a', 'open', false, false), c('b', 'open', false, true)])?.id, 'b')
    assert.equal(reusableConnection([c('a', 'open', true, false), c('b', 'closed', false, true)])?.id, 'a')
  })
})
