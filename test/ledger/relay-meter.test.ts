import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { Connection, Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  createMeshLibp2p,
  type MeshLibp2p,
  type MeshLibp2pInit,
  relayListenAddress,
} from '../../src/p2p/index.ts'
import { waitFor } from '../p2p/nodes.ts'

// coordination fees (SPEC §10): what crossed a beneficiary's circuits, counted on the relay and on the beneficiary.

export const ECHO = '/mesh-test/echo/1.0.0'

export async function host(t: TestContext, init: Partial<MeshLibp2pInit> = {}): Promise<MeshLibp2p> {
  const libp2p = await createMeshLibp2p({ key: Ed25519KeyPair.generate(), ...init })
  t.after(() => libp2p.stop())
  return libp2p
}

export async function serveEcho(libp2p: MeshLibp2p): Promise<void> {
  await libp2p.handle(
    ECHO,
    async (stream: Stream) => {
      for await (const chunk of stream) stream.send(chunk.subarray())
      await stream.close()
    },
    { runOnLimitedConnection: true },
  )
}

/** Sends `bytes` bytes over ECHO and reads them back; returns the bytes read. */
export async function echo(connection: Connection, bytes: number): Promise<number> {
  const stream = await connection.newStream(ECHO, { runOnLimitedConnection: true })
  let read = 0
  const reading = (async () => {
    for await (const chunk of stream) {
      read += chunk.byteLength
      if (read >= bytes) break
    }
  })()
  for (let sent = 0; sent < bytes; sent += 16 * 1024) {
    if (!stream.send(new Uint8Array(Math.min(16 * 1024, bytes - sent)).fill(7))) await stream.onDrain()
  }
  await reading
  await stream.close().catch(() => {})
  return read
}

/** A relay R, a hidden host H (its reservation on R only), and a peer P on TCP. */
export async function triangle(t: TestContext) {
  const r = await host(t, { relay: true })
  const relayAddr = r.getMultiaddrs()[0]?.toString() as string
  const h = await host(t, { listen: [relayListenAddress(relayAddr)] })
  const p = await host(t)
  await serveEcho(h)
  return { r, h, p, relayAddr }
}

function within(actual: number, expected: number, share: number): boolean {
  return Math.abs(actual - expected) <= expected * share
}

describe('relay meter (SPEC §10, coordination fees)', () => {
  it('the relay and the beneficiary count the same bytes, within 1% of what moved', async (t) => {
    const { r, h, p } = await triangle(t)
    const connection = await p.dial(multiaddr(h.getMultiaddrs()[0]?.toString() as string))
    const size = 2 * 1024 * 1024
    assert.equal(await echo(connection, size), size)
    const moved = 2 * size // there and back
    const atRelay = () => r.services.relayMeter.served(h.peerId.toString())?.bytes ?? 0
    const atHidden = () => h.services.relayMeter.relayed(r.peerId.toString())?.bytes ?? 0
    await waitFor(() => atRelay() >= moved && atHidden() >= moved, 'both counts past the bytes moved')
    assert.ok(within(atRelay(), moved, 0.01), `relay counted ${atRelay()} for ${moved}`)
    assert.ok(within(atHidden(), moved, 0.01), `beneficiary counted ${atHidden()} for ${moved}`)
    assert.ok(within(atHidden(), atRelay(), 0.001), `${atHidden()} against ${atRelay()}`)
    // P is no beneficiary: it holds no reservation.
    assert.equal(r.services.relayMeter.served(p.peerId.toString()), undefined)
    assert.equal(r.services.relayMeter.served(h.peerId.toString())?.circuits, 1)
  })

  it('a beneficiary cut off loses its circuits and its reservation, and gets neither again', async (t) => {
    const { r, h, p } = await triangle(t)
    const address = h.getMultiaddrs()[0]?.toString() as string
    const connection = await p.dial(multiaddr(address))
    assert.equal(await echo(connection, 64 * 1024), 64 * 1024)
    r.services.relayMeter.cut(h.peerId.toString(), 'MESH_RECEIPTS_REQUIRED')
    await waitFor(() => connection.status !== 'open', 'the circuit closed')
    assert.equal(r.services.relay?.reservations.size, 0)
    assert.equal(r.services.relayMeter.cutOff(h.peerId.toString())?.code, 'MESH_RECEIPTS_REQUIRED')
    await assert.rejects(p.dial(multiaddr(address)))
    r.services.relayMeter.restore(h.peerId.toString())
    assert.equal(r.services.relayMeter.cutOff(h.peerId.toString()), undefined)
  })
})
