import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { waitFor } from '../../scripts/lib/processes.ts'
import type { LedgerView } from '../../src/api/index.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import { type CliMesh, connectAndShareRoom, type E2E, e2e, startSyncingMesh } from '../fixtures/e2e.ts'

// coordination fees (SPEC §10): relay receipts and the ledger, across processes, through the CLI.

/**
 * R relays; H and P have no dialable address but their reservations on R (so every byte
 * between them crosses R); P connects to H, both accept, and they share a room.
 */
async function relayedPair(e: E2E, relayArgs: string[], hiddenArgs: string[] = []) {
  const relay = await startSyncingMesh(e, 'relay', [
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
    '--relay',
    ...relayArgs,
  ])
  const relayAddress = relay.proc?.listen[0] as string
  const via = ['--listen', '/p2p-circuit', '--relay-via', relayAddress]
  const hidden = await startSyncingMesh(e, 'hidden', [...via, ...hiddenArgs])
  const peer = await startSyncingMesh(e, 'peer', via)
  const room = { id: await connectAndShareRoom(e, peer, hidden, hidden.proc?.listen[0] as string, 'bulk') }
  /** `n` messages of 8 kB, from both sides in turn. */
  const post = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await (i % 2 === 0 ? peer : hidden).api?.post(`/api/rooms/${room.id}/messages`, {
        body: `${i} ${'x'.repeat(8000)}`,
      })
    }
  }
  return { relay, hidden, peer, room, post }
}

const ledgerOf = (m: CliMesh) => (m.api as HttpClient).get<LedgerView>('/api/ledger')
const sum = (rows: Array<Record<string, unknown>>, field: string) =>
  rows.reduce((total, row) => total + (row[field] as number), 0)

describe('coordination fees across processes (SPEC §10)', () => {
  it("R's ledger after a transfer matches the bytes moved within 1%; mesh ledger --verify holds, and fails on a forged, replayed or inflated receipt", async (t) => {
    const e = await e2e(t, 'mesh-ledger-e2e-', { logLevel: 'warn' })
    const { relay, hidden, peer, post } = await relayedPair(e, [])
    await post(128) // 1 MB of bodies, both ways
    // Receipts go every 2 s while anything is pending; the room's own chatter goes on, so "matches"
    // is within 1% of what the relay measured, and of what the beneficiaries counted themselves.
    // Receipts go every 2 s while anything is pending, and the room's own chatter goes on: wait
    // until what R holds receipts for is within 1% of what the beneficiaries counted moving
    // over their circuits (their own side of the count, GET /api/ledger `relays`).
    let last: unknown
    const final = await waitFor(async () => {
      const ledger = await ledgerOf(relay)
      const moved =
        sum((await ledgerOf(hidden)).relays, 'measuredBytes') +
        sum((await ledgerOf(peer)).relays, 'measuredBytes')
      const receipted = sum(ledger.beneficiaries, 'receiptedBytes')
      last = { moved, ledger: ledger.beneficiaries }
      return moved > 1_000_000 && Math.abs(receipted - moved) <= moved * 0.01 && { ledger, moved }
    }, "receipts covering the transfer in R's ledger").catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(last)}`)
    })
    const { ledger } = final
    assert.equal(ledger.relaying, true)
    // One circuit carries both ways (circuit churn): its beneficiary is the mesh it reaches,
    // H (P dialled it); P is one only if a circuit to it was ever opened.
    assert.ok(ledger.beneficiaries.some((b) => b.did === hidden.did))
    assert.ok(ledger.beneficiaries.every((b) => b.did === hidden.did || b.did === peer.did))
    for (const b of ledger.beneficiaries) {
      assert.equal(b.verified, true)
      assert.equal(b.cutOff, null)
      assert.equal(b.refused, 0)
      assert.ok(b.receipts >= 1)
    }
    // R's own measure of its circuits: the same traffic. The handshake, the room sync rounds and
    // the receipts reuse the open circuit (circuit churn): a couple of circuits per beneficiary,
    // not hundreds, and R's measure within 1% of the beneficiaries' own.
    const measured = sum(ledger.beneficiaries, 'measuredBytes')
    const circuits = sum(ledger.beneficiaries, 'circuits')
    assert.ok(circuits <= 2, `circuits: ${circuits}`)
    assert.ok(
      Math.abs(measured - final.moved) <= final.moved * 0.01,
      `R measured ${measured}, moved ${final.moved}`,
    )

    // The CLI: the ledger, its verification at the node, an export and its offline check.
    const shown = await e.cli<LedgerView>(relay, 'ledger')
    assert.equal(shown.beneficiaries.length, ledger.beneficiaries.length)
    assert.equal((await e.cli<{ ok: boolean }>(relay, 'ledger', '--verify')).ok, true)
    const exported = await e.cli<LedgerView>(relay, 'ledger', '--export')
    assert.ok((exported.receipts?.length ?? 0) >= 2)
    const file = join(e.root, 'ledger.json')
    await writeFile(file, JSON.stringify(exported))
    const offline = await e.run<{ ok: boolean }>(undefined, 'ledger', '--verify', '--file', file)
    assert.equal(offline.code, 0, offline.stderr)
    assert.equal(offline.out.ok, true)

    const receipts = exported.receipts ?? []
    const first = receipts[0] as NonNullable<LedgerView['receipts']>[number]
    const tampered = async (name: string, change: (l: LedgerView) => LedgerView) => {
      const path = join(e.root, `${name}.json`)
      await writeFile(path, JSON.stringify(change(JSON.parse(await readFile(file, 'utf8')) as LedgerView)))
      const res = await e.run<{ ok: boolean; problems: Array<{ code: string }> }>(
        undefined,
        'ledger',
        '--verify',
        '--file',
        path,
      )
      assert.equal(res.code, 1, `${name}: ${res.stderr}`)
      assert.equal(res.out.ok, false)
      return res.out.problems.map((p) => p.code)
    }
    // inflated: a receipt's bytes raised (and the totals with it, so they still add up)
    const inflate = (l: LedgerView): LedgerView => ({
      ...l,
      receipts: l.receipts?.map((r) => (r.sig === first.sig ? { ...r, bytes: r.bytes * 10 } : r)),
      beneficiaries: l.beneficiaries.map((b) =>
        b.did === first.beneficiary ? { ...b, receiptedBytes: b.receiptedBytes + first.bytes * 9 } : b,
      ),
    })
    assert.deepEqual(await tampered('inflated', inflate), ['MESH_SIGNATURE_MISMATCH'])
    // replayed: a receipt twice
    assert.ok(
      (await tampered('replayed', (l) => ({ ...l, receipts: [...(l.receipts ?? []), first] }))).includes(
        'MESH_REPLAY',
      ),
    )
    // forged: another beneficiary's signature put on it
    const other = receipts.find((r) => r.sig !== first.sig) as typeof first
    const forge = (l: LedgerView): LedgerView => ({
      ...l,
      receipts: l.receipts?.map((r) => (r.sig === first.sig ? { ...r, sig: other.sig } : r)),
    })
    assert.ok((await tampered('forged', forge)).includes('MESH_SIGNATURE_MISMATCH'))
  })

  it('a beneficiary that refuses receipts is cut off after the free allowance (MESH_RECEIPTS_REQUIRED); one that signs is served', async (t) => {
    const e = await e2e(t, 'mesh-ledger-cut-e2e-', { logLevel: 'warn' })
    const { relay, hidden, peer, post } = await relayedPair(
      e,
      ['--relay-free-bytes', '262144'],
      ['--no-relay-receipts'],
    )
    assert.equal((await ledgerOf(hidden)).signing, false)
    await post(96).catch(() => undefined)
    const row = await waitFor(async () => {
      const ledger = await e.cli<LedgerView>(relay, 'ledger')
      const b = ledger.beneficiaries.find((x) => x.did === hidden.did)
      return b?.cutOff !== null && b !== undefined && ledger
    }, 'the refusing beneficiary cut off')
    const cut = row.beneficiaries.find((x) => x.did === hidden.did)
    assert.equal(cut?.cutOff?.code, 'MESH_RECEIPTS_REQUIRED')
    assert.equal(cut?.receipts, 0)
    assert.ok((cut?.measuredBytes ?? 0) > 262_144)
    const served = row.beneficiaries.find((x) => x.did === peer.did)
    assert.equal(served?.cutOff ?? null, null)
    // Its reservation ended and it gets no new one: R holds the signing peer's alone.
    await waitFor(async () => {
      const health = await (relay.api as HttpClient).get<{ reachability: { reservations: number } }>(
        '/api/health',
      )
      return health.reachability.reservations === 1
    }, 'one reservation left at the relay')
    // The architect of R forgives it (relay ledger forgive): cut-off lifted, debt forgiven.
    const forgiven = await e.cli<{ did: string; wasCutOff: boolean }>(
      relay,
      'ledger',
      'forgive',
      hidden.did as string,
    )
    assert.deepEqual(forgiven, { did: hidden.did, wasCutOff: true })
    const after = (await ledgerOf(relay)).beneficiaries.find((x) => x.did === hidden.did)
    assert.equal(after?.cutOff, null)
    assert.equal(after?.unreceiptedBytes, 0)
  })
})
