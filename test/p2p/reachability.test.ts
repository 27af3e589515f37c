import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import {
  isRelayAddress,
  type MeshLibp2pInit,
  RELAY_SERVICE_DEFAULTS,
  relayListenAddress,
} from '../../src/p2p/index.ts'
import { startMesh, waitFor } from './nodes.ts'
import { echo, host, serveEcho } from './relay-hosts.ts'

// reachability (SPEC §10): circuit relay v2 between real libp2p hosts on loopback.

const DCUTR_PROTOCOL = '/libp2p/dcutr'

/** A relay R, a hidden host H (no listen address but its reservation on R), and a peer P on TCP. */
async function triangle(t: TestContext, relay: MeshLibp2pInit['relay'] = true) {
  const r = await host(t, { relay })
  const relayAddr = r.getMultiaddrs()[0]?.toString() as string
  const h = await host(t, { listen: [relayListenAddress(relayAddr)] })
  const p = await host(t)
  return { r, h, p, relayAddr }
}

describe('circuit relay v2 (SPEC §10)', () => {
  it('a hidden host takes a reservation, announces only relay addresses, and a peer reaches it through the relay', async (t) => {
    const { r, h, p, relayAddr } = await triangle(t)
    const addresses = h.getMultiaddrs().map(String)
    assert.ok(addresses.length > 0)
    assert.ok(addresses.every(isRelayAddress), addresses.join())
    assert.ok(addresses[0]?.startsWith(`${relayAddr}/p2p-circuit/p2p/${h.peerId}`))
    assert.deepEqual(h.services.reachability.status().status, 'relayed')
    const atRelay = r.services.reachability.status()
    assert.equal(atRelay.relay, true)
    assert.equal(atRelay.reservations, 1)
    assert.equal(p.services.reachability.status().status, 'unknown')

    await serveEcho(h, true)
    const connection = await p.dial(multiaddr(addresses[0] as string))
    assert.ok(connection.limits !== undefined, 'a relayed connection is limited')
    assert.ok(isRelayAddress(connection.remoteAddr.toString()))
    assert.equal(await echo(connection, 100_000), 100_000)
  })

  it('DCUtR: the hidden host asks for a direct upgrade over the relayed connection; on loopback it fails and the relayed connection carries on', async (t) => {
    const { h, p } = await triangle(t)
    await serveEcho(h, true)
    const asked: string[] = []
    p.use(DCUTR_PROTOCOL, (stream, connection, next) => {
      asked.push(connection.remoteAddr.toString())
      next(stream, connection)
    })
    const connection = await p.dial(multiaddr(h.getMultiaddrs()[0]?.toString() as string))
    await waitFor(() => asked.length > 0, 'a DCUtR stream from the hidden host')
    assert.ok(asked.every(isRelayAddress), 'asked over the relayed connection')
    // No public address to punch to on loopback: the upgrade fails, the circuit stays.
    assert.equal(await echo(connection, 32 * 1024), 32 * 1024)
    assert.equal(connection.status, 'open')
  })

  it('a protocol not allowed on limited connections is refused over the relay: why ours set runOnLimitedConnection', async (t) => {
    const { h, p } = await triangle(t)
    await serveEcho(h, false)
    const connection = await p.dial(multiaddr(h.getMultiaddrs()[0]?.toString() as string))
    // The protocol is negotiated, then the hidden host resets the stream (LimitedConnectionError).
    await assert.rejects(echo(connection, 1000))
  })

  it('a circuit past its byte limit is cut by the relay; a new dial opens a new one', async (t) => {
    const { h, p } = await triangle(t, { circuitBytes: 64 * 1024 })
    await serveEcho(h, true)
    const target = multiaddr(h.getMultiaddrs()[0]?.toString() as string)
    const first = await p.dial(target)
    await assert.rejects(echo(first, 512 * 1024))
    await waitFor(() => first.status !== 'open', 'the cut circuit closes')
    const second = await p.dial(target)
    assert.notEqual(second.id, first.id)
    assert.equal(await echo(second, 16 * 1024), 16 * 1024)
  })

  it('the per-peer cap: one peer holds at most maxCircuitsPerPeer circuits through the relay at once', async (t) => {
    const r = await host(t, { relay: { maxCircuitsPerPeer: 1 } })
    const relayAddr = r.getMultiaddrs()[0]?.toString() as string
    const h1 = await host(t, { listen: [relayListenAddress(relayAddr)] })
    const h2 = await host(t, { listen: [relayListenAddress(relayAddr)] })
    const p = await host(t)
    await p.dial(multiaddr(h1.getMultiaddrs()[0]?.toString() as string))
    await assert.rejects(p.dial(multiaddr(h2.getMultiaddrs()[0]?.toString() as string)))
    // Another peer is not held to p's cap.
    const q = await host(t)
    const c = await q.dial(multiaddr(h2.getMultiaddrs()[0]?.toString() as string))
    assert.equal(c.status, 'open')
  })

  it('the mesh record of a hidden mesh carries its relay addresses: a peer finds it through the DHT alone and dials them', async (t) => {
    const relay = await startMesh(t, { name: 'relay', host: { relay: true } })
    const hidden = await startMesh(t, {
      name: 'hidden',
      bootstrap: [relay.addr()],
      host: { listen: [relayListenAddress(relay.addr())] },
    })
    const peer = await startMesh(t, { name: 'peer', bootstrap: [relay.addr()] })
    const found = await waitFor(
      async () =>
        (await peer.discovery.lookup(hidden.key.did).catch(() => undefined))?.record.multiaddrs.some(
          isRelayAddress,
        )
          ? await peer.discovery.lookup(hidden.key.did)
          : undefined,
      'the hidden mesh record with its relay address, from the DHT',
      20_000,
    )
    const relayed = found.record.multiaddrs.filter(isRelayAddress)
    assert.deepEqual(relayed, hidden.libp2p.getMultiaddrs().map(String))
    const connection = await peer.libp2p.dial(multiaddr(relayed[0] as string))
    assert.equal(connection.remotePeer.toString(), hidden.libp2p.peerId.toString())
  })

  it('a mesh listening on /p2p-circuit alone finds a relay among the meshes it joins and takes a reservation there', async (t) => {
    const relay = await startMesh(t, { name: 'relay', host: { relay: true } })
    const plain = await startMesh(t, { name: 'plain', bootstrap: [relay.addr()] })
    const hidden = await startMesh(t, {
      name: 'hidden',
      bootstrap: [plain.addr(), relay.addr()],
      host: { listen: ['/p2p-circuit'] },
      intervalMs: 60_000,
    })
    const addresses = await waitFor(() => {
      const list = hidden.libp2p.getMultiaddrs().map(String)
      return list.length > 0 ? list : undefined
    }, 'a reservation on a relay found by itself')
    assert.ok(
      addresses.every((a) => a.startsWith(`${relay.addr()}/p2p-circuit/`)),
      addresses.join(),
    )
    // …and the mesh record it publishes says so.
    const record = await waitFor(
      () => (hidden.discovery.record?.multiaddrs.some(isRelayAddress) ? hidden.discovery.record : undefined),
      'a record with the relay address',
    )
    assert.deepEqual(record.multiaddrs, addresses)
    // The relay goes away: the reservation is lost, and the record says so at once, not at
    // the next round (a minute away).
    await relay.stop()
    await waitFor(
      () => (hidden.discovery.record?.multiaddrs.length === 0 ? true : undefined),
      'a record without the lost relay address',
    )
  })

  it('a relay address without the relay peer id is refused with MESH_BAD_REQUEST; the defaults are as documented', () => {
    assert.throws(() => relayListenAddress('/ip4/127.0.0.1/tcp/4001'), { code: 'MESH_BAD_REQUEST' })
    assert.throws(() => relayListenAddress('not a multiaddr'))
    assert.deepEqual(RELAY_SERVICE_DEFAULTS, {
      maxReservations: 64,
      reservationTtlMs: 3_600_000,
      circuitDurationMs: 1_800_000,
      circuitBytes: 64 * 1024 * 1024,
      maxCircuitsPerPeer: 8,
    })
  })
})
