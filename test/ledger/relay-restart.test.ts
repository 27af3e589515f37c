import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { LedgerBook, RelayFees, type RelayFeesInit } from '../../src/ledger/index.ts'
import { silentLogger } from '../../src/log.ts'
import { type MeshLibp2p, relayListenAddress } from '../../src/p2p/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { tempDir } from '../fixtures/principals.ts'
import { waitFor } from '../p2p/nodes.ts'
import { host } from '../p2p/relay-hosts.ts'
import { echo, triangle } from './hosts.ts'

// coordination fees (SPEC §10): a relay's cut-offs and counts kept across its restarts.

/** The relay's fees over the store at `path`, opened for this start; stop() closes both. */
async function relayFees(libp2p: MeshLibp2p, key: Ed25519KeyPair, path: string, init: RelayFeesInit = {}) {
  const store = new MeshStore({ path })
  await store.open()
  const fees = new RelayFees(
    {
      libp2p: () => libp2p,
      key: () => key,
      book: new LedgerBook(store.sublevel('ledger')),
      logger: silentLogger(),
    },
    init,
  )
  await fees.start()
  return {
    fees,
    stop: async () => {
      await fees.stop()
      await libp2p.stop()
      await store.close()
    },
  }
}

async function beneficiary(t: TestContext, libp2p: MeshLibp2p, key: Ed25519KeyPair) {
  const fees = new RelayFees(
    {
      libp2p: () => libp2p,
      key: () => key,
      book: { relayState: {} } as unknown as LedgerBook,
      logger: silentLogger(),
    },
    { signReceipts: false },
  )
  t.after(() => fees.stop())
  await fees.start()
}

const rowOf = async (fees: RelayFees, did: string) =>
  (await fees.view()).beneficiaries.find((b) => b.did === did)

describe('the relay ledger across restarts (SPEC §10)', () => {
  it('a cut-off mesh stays cut off across the relay restart: no reservation, no circuit; forgive serves it again', async (t) => {
    const path = join(await tempDir(t, 'mesh-relay-restart-'), 'db')
    const { r, h, p, keys } = await triangle(t)
    const first = await relayFees(r, keys.r, path, { freeBytes: 256 * 1024, maxDebtBytes: 1024 * 1024 })
    await beneficiary(t, h, keys.h)
    const connection = await p.dial(multiaddr(h.getMultiaddrs()[0]?.toString() as string))
    await echo(connection, 4 * 1024 * 1024).catch(() => 0)
    await waitFor(async () => (await rowOf(first.fees, keys.h.did))?.cutOff ?? undefined, 'the cut-off')
    const port = r.getMultiaddrs()[0]?.toString().split('/')[4] as string
    await first.stop()

    // the relay restarts on the same key, port and store
    const r2 = await host(t, { key: keys.r, relay: true, listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    const second = await relayFees(r2, keys.r, path, { freeBytes: 256 * 1024, maxDebtBytes: 1024 * 1024 })
    t.after(() => second.stop())
    const row = await rowOf(second.fees, keys.h.did)
    assert.equal(row?.cutOff?.code, 'MESH_RECEIPTS_REQUIRED')
    assert.ok((row?.unreceiptedBytes ?? 0) > 256 * 1024, 'the debt carried over')
    assert.ok(r2.services.relayMeter.cutOff(h.peerId.toString()) !== undefined)
    // the hidden mesh asks for a reservation again: refused
    const again = await host(t, {
      key: keys.h,
      listen: [relayListenAddress(r2.getMultiaddrs()[0]?.toString() as string)],
    })
      .then(() => true)
      .catch(() => false)
    assert.equal(r2.services.relay?.reservations.size, 0, `reservation refused (host started: ${again})`)

    // forgiven: served again, here and after another restart
    assert.equal(await second.fees.forgive(keys.h.did), true)
    const forgiven = await rowOf(second.fees, keys.h.did)
    assert.equal(forgiven?.cutOff, null)
    assert.equal(forgiven?.unreceiptedBytes, 0)
    const h2 = await host(t, {
      key: keys.h,
      listen: [relayListenAddress(r2.getMultiaddrs()[0]?.toString() as string)],
    })
    await waitFor(() => r2.services.relay?.reservations.size === 1, 'a reservation taken')
    assert.ok(h2.getMultiaddrs().length > 0)
  })

  it('the debt is not forgiven by a restart: what was measured and not receipted carries over', async (t) => {
    const path = join(await tempDir(t, 'mesh-relay-debt-'), 'db')
    const { r, h, p, keys } = await triangle(t)
    const first = await relayFees(r, keys.r, path)
    await beneficiary(t, h, keys.h)
    const connection = await p.dial(multiaddr(h.getMultiaddrs()[0]?.toString() as string))
    assert.equal(await echo(connection, 512 * 1024), 512 * 1024)
    const before = (await rowOf(first.fees, keys.h.did))?.unreceiptedBytes ?? 0
    assert.ok(before >= 1024 * 1024, `unreceipted ${before}`)
    await first.stop()
    const r2 = await host(t, { key: keys.r, relay: true })
    const second = await relayFees(r2, keys.r, path)
    t.after(() => second.stop())
    const row = await rowOf(second.fees, keys.h.did)
    assert.equal(row?.unreceiptedBytes, before)
    assert.equal(row?.cutOff, null)
  })
})
