import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  LedgerBook,
  MESH_RECEIPTS_PROTOCOL,
  type Receipt,
  RelayFees,
  type RelayFeesInit,
  signReceipt,
  verifyLedger,
} from '../../src/ledger/index.ts'
import { silentLogger } from '../../src/log.ts'
import type { MeshLibp2p } from '../../src/p2p/index.ts'
import { tempStore } from '../fixtures/principals.ts'
import { waitFor } from '../p2p/nodes.ts'
import { echo, triangle, within } from './hosts.ts'

// coordination fees (SPEC §10): receipts over /mesh/receipts/1.0.0, the relay's ledger, the free allowance.

async function fees(t: TestContext, libp2p: MeshLibp2p, key: Ed25519KeyPair, init: RelayFeesInit = {}) {
  const store = await tempStore(t)
  const service = new RelayFees(
    {
      libp2p: () => libp2p,
      key: () => key,
      book: new LedgerBook(store.sublevel('ledger')),
      logger: silentLogger(),
    },
    init,
  )
  await service.start()
  t.after(() => service.stop())
  return service
}

/** Sends one message on the receipts protocol from `from` to `to` and reads the answer. */
async function send(
  from: MeshLibp2p,
  to: MeshLibp2p,
  message: unknown,
): Promise<{ ok?: unknown; error?: { code: string } }> {
  const stream = await from.dialProtocol(to.peerId, MESH_RECEIPTS_PROTOCOL)
  const lp = lpStream(stream)
  await lp.write(
    typeof message === 'string'
      ? new TextEncoder().encode(message)
      : new TextEncoder().encode(JSON.stringify(message)),
  )
  const answer = JSON.parse(new TextDecoder().decode((await lp.read()).subarray()))
  await stream.close()
  return answer
}

describe('relay receipts and the ledger (SPEC §10)', () => {
  it("R's ledger after a transfer matches the bytes moved within 1%, and verifies offline", async (t) => {
    const { r, h, p, keys } = await triangle(t)
    const atRelay = await fees(t, r, keys.r)
    await fees(t, h, keys.h, { receiptIntervalMs: 200, receiptBytes: 256 * 1024 })
    const connection = await p.dial(multiaddr(h.getMultiaddrs()[0]?.toString() as string))
    const size = 4 * 1024 * 1024
    assert.equal(await echo(connection, size), size)
    const moved = 2 * size
    const row = await waitFor(async () => {
      const view = await atRelay.view()
      const b = view.beneficiaries.find((x) => x.did === keys.h.did)
      return (
        b !== undefined && b.receiptedBytes >= moved && within(b.receiptedBytes, b.measuredBytes, 0.001) && b
      )
    }, 'receipts covering the transfer')
    assert.ok(within(row.receiptedBytes, moved, 0.01), `ledger ${row.receiptedBytes} for ${moved} moved`)
    assert.ok(row.receipts >= 2, `${row.receipts} receipts`)
    assert.equal(row.verified, true)
    assert.equal(row.refused, 0)
    assert.equal(row.cutOff, null)
    const exported = await atRelay.view({ receipts: true })
    const check = verifyLedger(exported)
    assert.equal(check.ok, true, JSON.stringify(check.problems))
    // The export is read after `row`: a receipt for the connection's later traffic (identify,
    // pings) may have landed between the two reads, so it is checked against its own row.
    const exportedRow = exported.beneficiaries.find((x) => x.did === keys.h.did)
    assert.equal(check.beneficiaries[0]?.bytes, exportedRow?.receiptedBytes)
    assert.ok((exportedRow?.receiptedBytes ?? 0) >= row.receiptedBytes)
  })

  it('a forged, tampered, replayed, inflated, out-of-order or misdirected receipt is refused on arrival with its code', async (t) => {
    const { r, h, p, keys } = await triangle(t)
    await fees(t, r, keys.r)
    const connection = await p.dial(multiaddr(h.getMultiaddrs()[0]?.toString() as string))
    assert.equal(await echo(connection, 256 * 1024), 256 * 1024)
    const now = Date.now()
    const content = {
      relay: keys.r.did,
      beneficiary: keys.h.did,
      bytes: 1000,
      messages: 3,
      from: now - 1000,
      to: now,
      seq: 1,
    }
    const good = signReceipt(keys.h, content)
    // forged: signed by another key in the beneficiary's name
    const forged = { ...signReceipt(Ed25519KeyPair.generate(), content) }
    assert.equal((await send(h, r, forged)).error?.code, 'MESH_SIGNATURE_MISMATCH')
    // tampered after signing: the bytes raised
    assert.equal((await send(h, r, { ...good, bytes: 5000 })).error?.code, 'MESH_SIGNATURE_MISMATCH')
    // from another peer than its beneficiary
    assert.equal((await send(p, r, good)).error?.code, 'MESH_FORBIDDEN')
    // for another relay
    assert.equal(
      (await send(h, r, signReceipt(keys.h, { ...content, relay: keys.p.did }))).error?.code,
      'MESH_RECEIPT_INVALID',
    )
    // malformed, unknown fields, oversized
    assert.equal((await send(h, r, '{not json')).error?.code, 'MESH_BAD_REQUEST')
    assert.equal((await send(h, r, { ...good, extra: 1 })).error?.code, 'MESH_BAD_REQUEST')
    await assert.rejects(send(h, r, { ...good, pad: 'x'.repeat(4096) }))
    // a skipped seq, then the good one, then it again (replayed), then an overlap
    assert.equal(
      (await send(h, r, signReceipt(keys.h, { ...content, seq: 2 }))).error?.code,
      'MESH_RECEIPT_INVALID',
    )
    assert.ok((await send(h, r, good)).ok)
    assert.equal((await send(h, r, good)).error?.code, 'MESH_REPLAY')
    const overlap = signReceipt(keys.h, { ...content, seq: 2, from: now - 10, to: now + 10 })
    assert.equal((await send(h, r, overlap)).error?.code, 'MESH_RECEIPT_INVALID')
    // in the future
    const future = signReceipt(keys.h, { ...content, seq: 2, from: now, to: now + 3_600_000 })
    assert.equal((await send(h, r, future)).error?.code, 'MESH_CLOCK_SKEW')
    // inflated: more bytes than the relay carried
    const inflated = signReceipt(keys.h, {
      ...content,
      seq: 2,
      from: now,
      to: now + 5,
      bytes: 50 * 1024 * 1024,
    })
    assert.equal((await send(h, r, inflated)).error?.code, 'MESH_RECEIPT_INVALID')
    // the next one in order is taken
    assert.ok((await send(h, r, signReceipt(keys.h, { ...content, seq: 2, from: now, to: now + 5 }))).ok)
  })

  it('a forged, replayed or inflated receipt in an exported ledger fails offline verification', async (t) => {
    const { r, keys } = await triangle(t)
    const relay = keys.r.did
    const chain: Receipt[] = [1, 2, 3].map((seq) =>
      signReceipt(keys.h, {
        relay,
        beneficiary: keys.h.did,
        bytes: 100 * seq,
        messages: seq,
        from: seq * 10,
        to: seq * 10 + 10,
        seq,
      }),
    )
    const summary = {
      did: keys.h.did,
      peerId: keys.h.peerId().toString(),
      measuredBytes: 600,
      measuredMessages: 6,
      circuits: 1,
      receipts: 3,
      receiptedBytes: 600,
      receiptedMessages: 6,
      lastSeq: 3,
      unreceiptedBytes: 0,
      refused: 0,
      verified: true,
      cutOff: null,
    }
    const ledger = { did: relay, beneficiaries: [summary], receipts: chain }
    assert.equal(verifyLedger(ledger).ok, true, JSON.stringify(verifyLedger(ledger).problems))
    const codes = (receipts: Receipt[], beneficiaries = [summary]) =>
      verifyLedger({ did: relay, beneficiaries, receipts }).problems.map((x) => x.code)
    // inflated: bytes raised after signing
    assert.ok(
      codes(chain.map((x) => (x.seq === 2 ? { ...x, bytes: 20_000 } : x))).includes(
        'MESH_SIGNATURE_MISMATCH',
      ),
    )
    // inflated totals: the summary claims more than the receipts add up to
    assert.deepEqual(codes(chain, [{ ...summary, receiptedBytes: 9000 }]), ['MESH_RECEIPT_INVALID'])
    // forged: signed by another key
    const forged = signReceipt(Ed25519KeyPair.generate(), { ...chain[2], sig: undefined } as never)
    assert.ok(
      codes([chain[0], chain[1], { ...forged, sig: forged.sig }] as Receipt[]).includes(
        'MESH_SIGNATURE_MISMATCH',
      ),
    )
    // replayed: a receipt twice
    assert.ok(codes([...chain, chain[1] as Receipt]).includes('MESH_REPLAY'))
    // an interval overlapping the one before
    const overlapping = signReceipt(keys.h, {
      relay,
      beneficiary: keys.h.did,
      bytes: 1,
      messages: 1,
      from: 35,
      to: 50,
      seq: 4,
    })
    assert.ok(
      codes(
        [...chain, overlapping],
        [{ ...summary, receipts: 4, receiptedBytes: 601, receiptedMessages: 7, lastSeq: 4 }],
      ).includes('MESH_RECEIPT_INVALID'),
    )
    // for another relay
    assert.ok(verifyLedger({ ...ledger, did: r.peerId.toString() }).ok === false)
  })

  it('a beneficiary that signs no receipts is cut off past the free allowance: circuits closed, reservation ended, no new circuit', async (t) => {
    const { r, h, p, keys } = await triangle(t)
    const atRelay = await fees(t, r, keys.r, { freeBytes: 256 * 1024, maxDebtBytes: 1024 * 1024 })
    await fees(t, h, keys.h, { signReceipts: false })
    const address = h.getMultiaddrs()[0]?.toString() as string
    const connection = await p.dial(multiaddr(address))
    // Past maxDebtBytes it is cut at once; short of it, graceMs after it went past the allowance.
    await echo(connection, 4 * 1024 * 1024).catch(() => 0)
    await waitFor(() => p.getConnections(h.peerId).length === 0, 'the circuit cut')
    const row = (await atRelay.view()).beneficiaries.find((x) => x.did === keys.h.did)
    assert.equal(row?.cutOff?.code, 'MESH_RECEIPTS_REQUIRED')
    assert.ok((row?.measuredBytes ?? 0) > 256 * 1024)
    assert.equal(r.services.relay?.reservations.size, 0)
    await assert.rejects(p.dial(multiaddr(address)), 'no new circuit to it')
  })

  it('a beneficiary that signs receipts goes on past the free allowance', async (t) => {
    const { r, h, p, keys } = await triangle(t)
    const atRelay = await fees(t, r, keys.r, { freeBytes: 512 * 1024 })
    await fees(t, h, keys.h, { receiptBytes: 64 * 1024, receiptIntervalMs: 200 })
    const connection = await p.dial(multiaddr(h.getMultiaddrs()[0]?.toString() as string))
    assert.equal(await echo(connection, 2 * 1024 * 1024), 2 * 1024 * 1024)
    assert.equal(connection.status, 'open')
    const row = await waitFor(async () => {
      const b = (await atRelay.view()).beneficiaries.find((x) => x.did === keys.h.did)
      return b !== undefined && b.receiptedBytes >= 4 * 1024 * 1024 && b
    }, 'receipts for the transfer')
    assert.equal(row.cutOff, null)
    assert.ok(row.receipts > 1)
  })
})
