import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import {
  AuditLog,
  type AuditLog as AuditLogType,
  type AuditProblemKind,
  type AuditRow,
  auditSignedText,
  rowHash,
} from '../../src/audit/index.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { alice, bob, mallory, tempDir, tempStore } from '../fixtures/principals.ts'

// The log's own key layout, repeated here on purpose: these tests play the attacker
// who edits the LevelDB directly.
const entryKey = (seq: number): string => `entry/v1/${String(seq).padStart(16, '0')}`

async function startedLog(
  t: TestContext,
  store: MeshStore,
  key = alice,
  init: Partial<{ knownKeys: () => string[] }> = {},
) {
  let clock = Date.parse('2025-01-01T00:00:00Z')
  const audit = new AuditLog({ store, key, now: () => (clock += 1000), ...init })
  await audit.start()
  t.after(() => audit.stop())
  return audit
}

async function fill(audit: AuditLogType, n: number): Promise<AuditRow[]> {
  const rows: AuditRow[] = []
  for (let i = 0; i < n; i++) {
    rows.push(
      await audit.append({
        action: i % 2 === 0 ? 'federation.connection.requested' : 'federation.connection.accepted',
        actor: bob.did,
        subject: `conn-${i}`,
        details: { i, note: `entry ${i}` },
      }),
    )
  }
  return rows
}

const raw = (store: MeshStore) => store.sublevel<AuditRow>('audit')

function resign(row: Omit<AuditRow, 'hash' | 'signature'>, key: Ed25519KeyPair): AuditRow {
  const hash = rowHash(row)
  return { ...row, hash, signature: Buffer.from(key.sign(auditSignedText(hash))).toString('base64url') }
}

function assertProblem(
  report: { ok: boolean; problems: { seq: number; kind: AuditProblemKind }[] },
  seq: number,
  kinds: AuditProblemKind[],
): void {
  assert.equal(report.ok, false)
  assert.ok(
    report.problems.some((p) => p.seq === seq && kinds.includes(p.kind)),
    `expected ${kinds.join('|')} at ${seq}, got ${JSON.stringify(report.problems)}`,
  )
}

describe('audit log', () => {
  it('appends a linked, signed chain of 50 rows that verifies', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    assert.equal(audit.head(), null)
    const empty = await audit.verify()
    assert.deepEqual(empty, { ok: true, count: 0, head: null, problems: [] })

    const rows = await fill(audit, 50)
    assert.equal(rows[0]?.seq, 1)
    assert.equal(rows[0]?.prev, '0'.repeat(64))
    for (let i = 1; i < rows.length; i++) assert.equal(rows[i]?.prev, rows[i - 1]?.hash)
    assert.equal(rows[0]?.signer, alice.did)
    assert.match(rows[0]?.ts ?? '', /^\d{4}-\d\d-\d\dT/)
    assert.deepEqual(audit.head(), { seq: 50, hash: rows[49]?.hash })

    const report = await audit.verify()
    assert.deepEqual(report, { ok: true, count: 50, head: { seq: 50, hash: rows[49]?.hash }, problems: [] })
  })

  it('stores optional fields as null and details as their canonical JSON', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    const row = await audit.append({ action: 'federation.policy.changed', details: { b: undefined, a: 1 } })
    assert.equal(row.actor, null)
    assert.equal(row.subject, null)
    assert.deepEqual(row.details, { a: 1 })
    assert.deepEqual(await raw(store).get(entryKey(1)), row)
    assert.equal((await audit.verify()).ok, true)
  })

  it('refuses malformed entries and details over 8 KiB, storing nothing', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    const bad = [
      { action: 'Not An Action' },
      { action: '' },
      { action: 'ok.action', actor: 'mallory' },
      { action: 'ok.action', subject: 'x'.repeat(513) },
      { action: 'ok.action', details: [1, 2] as unknown as Record<string, unknown> },
    ]
    for (const entry of bad) {
      await assert.rejects(
        audit.append(entry),
        { code: 'MESH_BAD_REQUEST' },
        JSON.stringify(entry).slice(0, 60),
      )
    }
    await assert.rejects(audit.append({ action: 'ok.action', details: { blob: 'x'.repeat(9000) } }), {
      code: 'MESH_TOO_LARGE',
    })
    await assert.rejects(
      audit.append(
        { action: 'ok.action' },
        { with: [{ type: 'put', sublevel: raw(store), key: entryKey(1), value: {} }] },
      ),
      { code: 'MESH_BAD_REQUEST' },
    )
    assert.equal(audit.head(), null)
    assert.equal((await audit.list()).entries.length, 0)
  })

  it('finds a row whose details were altered in the store, at its seq', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    await fill(audit, 20)
    const row = (await raw(store).get(entryKey(7))) as AuditRow
    await raw(store).put(entryKey(7), { ...row, details: { ...row.details, note: 'nothing happened' } })
    const report = await audit.verify()
    assertProblem(report, 7, ['altered'])
    assert.equal(report.problems.length, 1)
  })

  it('finds an altered row even when its hash was recomputed (the signature no longer fits)', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    await fill(audit, 10)
    const row = (await raw(store).get(entryKey(4))) as AuditRow
    const altered = { ...row, action: 'federation.connection.declined' }
    await raw(store).put(entryKey(4), { ...altered, hash: rowHash(altered) })
    const report = await audit.verify()
    assertProblem(report, 4, ['bad-signature'])
    assert.equal(report.problems.length, 1)
  })

  it('finds a removed middle row', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    await fill(audit, 20)
    await raw(store).del(entryKey(10))
    const report = await audit.verify()
    assertProblem(report, 10, ['removed'])
    assert.equal(report.problems.length, 1)
    assert.equal(report.count, 19)
  })

  it('finds swapped rows as reordered, naming both positions', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    await fill(audit, 20)
    const a = await raw(store).get(entryKey(5))
    const b = await raw(store).get(entryKey(12))
    await raw(store).batch([
      { type: 'put', key: entryKey(5), value: b as AuditRow },
      { type: 'put', key: entryKey(12), value: a as AuditRow },
    ])
    const report = await audit.verify()
    assertProblem(report, 5, ['reordered'])
    assertProblem(report, 12, ['reordered'])
    assert.deepEqual(
      report.problems.map((p) => p.kind),
      ['reordered', 'reordered'],
    )
  })

  it('finds a removed tail as truncated, against the stored head and against a checkpoint', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    const rows = await fill(audit, 20)
    await raw(store).del(entryKey(20))
    assertProblem(await audit.verify(), 20, ['truncated'])

    // An attacker who also rolls the head back leaves a log that is consistent in
    // itself; a head kept from before still catches it.
    const row19 = rows[18] as AuditRow
    await raw(store).put('head/v1', { seq: 19, hash: row19.hash } as unknown as AuditRow)
    assert.equal((await audit.verify()).ok, true)
    const checkpoint = { seq: 20, hash: (rows[19] as AuditRow).hash }
    assertProblem(await audit.verify({ checkpoint }), 20, ['truncated'])
  })

  it('finds a substituted row that is signed but does not link', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    const rows = await fill(audit, 5)
    const { hash: _h, signature: _s, ...unsigned } = rows[2] as AuditRow
    await raw(store).put(entryKey(3), resign({ ...unsigned, details: { rewritten: true } }, alice))
    const report = await audit.verify()
    // The substitute is signed by the mesh key, but row 4 still points at the original.
    assertProblem(report, 4, ['altered'])
    assert.equal(report.problems.length, 1)
  })

  it('finds a tail rewritten with the mesh key itself only through a checkpoint', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    const rows = await fill(audit, 5)
    const checkpoint = { seq: 5, hash: (rows[4] as AuditRow).hash }
    const { hash: _h, signature: _s, ...unsigned } = rows[4] as AuditRow
    const forged = resign({ ...unsigned, details: { rewritten: true } }, alice)
    await raw(store).batch([
      { type: 'put', key: entryKey(5), value: forged },
      { type: 'put', key: 'head/v1', value: { seq: 5, hash: forged.hash } as unknown as AuditRow },
    ])
    assert.equal((await audit.verify()).ok, true)
    assertProblem(await audit.verify({ checkpoint }), 5, ['altered'])
  })

  it('finds a row re-signed by mallory: as unknown-signer, or as bad-signature when it claims our key', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    await fill(audit, 10)
    const { hash: _h, signature: _s, ...unsigned } = (await raw(store).get(entryKey(3))) as AuditRow
    await raw(store).put(entryKey(3), resign({ ...unsigned, signer: mallory.did }, mallory))
    const own = await audit.verify()
    assertProblem(own, 3, ['unknown-signer'])

    const claimed = resign(unsigned, mallory)
    await raw(store).put(entryKey(3), claimed)
    assertProblem(await audit.verify(), 3, ['bad-signature'])
  })

  it('keeps a linear chain under 100 concurrent appends', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    const rows = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        audit.append({ action: 'federation.envelope.accepted', subject: `env-${i}`, details: { i } }),
      ),
    )
    assert.deepEqual(
      rows.map((r) => r.seq).sort((a, b) => a - b),
      Array.from({ length: 100 }, (_, i) => i + 1),
    )
    const report = await audit.verify()
    assert.equal(report.ok, true, JSON.stringify(report.problems))
    assert.equal(report.count, 100)
  })

  it('writes the caller’s operations atomically with the row, and nothing when the batch fails', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    const connections = store.sublevel<{ status: string }>('connections')
    const row = await audit.append(
      { action: 'federation.connection.accepted', subject: 'c1' },
      { with: [{ type: 'put', sublevel: connections, key: 'c1', value: { status: 'accepted' } }] },
    )
    assert.deepEqual(await connections.get('c1'), { status: 'accepted' })
    assert.equal(row.seq, 1)

    await assert.rejects(
      audit.append(
        { action: 'federation.connection.declined', subject: 'c2' },
        {
          with: [
            { type: 'put', sublevel: connections, key: 'c2', value: { status: 'declined' } },
            { type: 'bogus', sublevel: connections, key: 'c3' } as never,
          ],
        },
      ),
    )
    assert.equal(await connections.get('c2'), undefined)
    assert.equal(await raw(store).get(entryKey(2)), undefined)
    assert.deepEqual(audit.head(), { seq: 1, hash: row.hash })
    const next = await audit.append({ action: 'federation.connection.declined', subject: 'c2' })
    assert.equal(next.seq, 2)
    assert.equal(next.prev, row.hash)
    assert.equal((await audit.verify()).ok, true)
  })

  it('refuses appends once stopped, and honours an aborted signal', async (t) => {
    const store = await tempStore(t)
    const audit = new AuditLog({ store, key: alice })
    await assert.rejects(audit.append({ action: 'x.y' }), { code: 'MESH_UNAVAILABLE' })
    await audit.start()
    await assert.rejects(audit.append({ action: 'x.y' }, { signal: AbortSignal.abort() }), {
      name: 'AbortError',
    })
    await audit.append({ action: 'x.y' })
    await audit.stop()
    await assert.rejects(audit.append({ action: 'x.y' }), { code: 'MESH_UNAVAILABLE' })
    await assert.rejects(audit.verify({ signal: AbortSignal.abort() }), { name: 'AbortError' })
    t.after(() => audit.stop())
  })

  it('continues the chain and still verifies after the store is reopened', async (t) => {
    const path = join(await tempDir(t), 'db')
    const first = new MeshStore({ path })
    await first.open()
    const audit1 = new AuditLog({ store: first, key: alice })
    await audit1.start()
    const rows = await fill(audit1, 10)
    await audit1.stop()
    await first.close()

    const second = new MeshStore({ path })
    await second.open()
    t.after(() => second.close())
    const audit2 = new AuditLog({ store: second, key: alice })
    await audit2.start()
    t.after(() => audit2.stop())
    assert.deepEqual(audit2.head(), { seq: 10, hash: rows[9]?.hash })
    const report = await audit2.verify()
    assert.equal(report.ok, true)
    assert.equal(report.count, 10)
    const next = await audit2.append({ action: 'federation.connection.disconnected' })
    assert.equal(next.seq, 11)
    assert.equal(next.prev, rows[9]?.hash)
    assert.equal((await audit2.verify()).ok, true)
  })

  it('rotates the signing key: old rows stay valid, after a restart through knownKeys', async (t) => {
    const path = join(await tempDir(t), 'db')
    const store = new MeshStore({ path })
    await store.open()
    const audit = new AuditLog({ store, key: alice })
    await audit.start()
    await fill(audit, 3)
    const rotation = await audit.rotateKey(bob, { details: { reason: 'yearly' } })
    assert.equal(rotation.action, 'audit.key.rotated')
    assert.equal(rotation.signer, alice.did)
    assert.deepEqual(rotation.details, { reason: 'yearly', from: alice.did, to: bob.did })
    const after = await audit.append({ action: 'federation.connection.accepted' })
    assert.equal(after.signer, bob.did)
    assert.equal(audit.signer, bob.did)
    assert.equal((await audit.verify()).ok, true)
    await audit.stop()
    await store.close()

    const reopened = new MeshStore({ path })
    await reopened.open()
    t.after(() => reopened.close())
    const forgetful = new AuditLog({ store: reopened, key: bob })
    await forgetful.start()
    const report = await forgetful.verify()
    assert.equal(report.ok, false)
    assert.deepEqual(
      report.problems.map((p) => [p.seq, p.kind]),
      [1, 2, 3, 4].map((seq) => [seq, 'unknown-signer']),
    )
    await forgetful.stop()

    const withHistory = new AuditLog({ store: reopened, key: bob, knownKeys: () => [alice.did] })
    await withHistory.start()
    t.after(() => withHistory.stop())
    assert.equal((await withHistory.verify()).ok, true)
  })

  it('pages rows in order, filtered by action prefix', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    await fill(audit, 25)
    const first = await audit.list({ limit: 10 })
    assert.deepEqual(
      first.entries.map((r) => r.seq),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    )
    assert.equal(first.nextCursor, 10)
    const rest = await audit.list({ after: 20, limit: 10 })
    assert.deepEqual(
      rest.entries.map((r) => r.seq),
      [21, 22, 23, 24, 25],
    )
    assert.equal(rest.nextCursor, null)
    const exact = await audit.list({ after: 15, limit: 10 })
    assert.equal(exact.entries.length, 10)
    assert.equal(exact.nextCursor, null)
    const accepted = await audit.list({ action: 'federation.connection.acc', limit: 500 })
    assert.equal(accepted.entries.length, 12)
    assert.ok(accepted.entries.every((r) => r.action === 'federation.connection.accepted'))
    await assert.rejects(audit.list({ limit: 0 }), { code: 'MESH_BAD_REQUEST' })
    await assert.rejects(audit.list({ limit: 501 }), { code: 'MESH_BAD_REQUEST' })
    await assert.rejects(audit.list({ after: -1 }), { code: 'MESH_BAD_REQUEST' })
  })

  it('keeps appending after tampering without hiding it', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    await fill(audit, 5)
    await raw(store).del(entryKey(3))
    await audit.append({ action: 'federation.connection.accepted' })
    const report = await audit.verify()
    assertProblem(report, 3, ['removed'])
    assert.equal(report.count, 5)
    assert.deepEqual(report.head?.seq, 6)
  })
})
