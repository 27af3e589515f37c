import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { waitFor } from '../p2p/nodes.ts'
import { echo, triangle, within } from './hosts.ts'

// coordination fees (SPEC §10): what crossed a beneficiary's circuits, counted on the relay and on the beneficiary.

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
    await waitFor(() => p.getConnections(h.peerId).length === 0, 'the circuit closed')
    assert.equal(r.services.relay?.reservations.size, 0)
    assert.equal(r.services.relayMeter.cutOff(h.peerId.toString())?.code, 'MESH_RECEIPTS_REQUIRED')
    await assert.rejects(p.dial(multiaddr(address)))
    r.services.relayMeter.restore(h.peerId.toString())
    assert.equal(r.services.relayMeter.cutOff(h.peerId.toString()), undefined)
  })
})
