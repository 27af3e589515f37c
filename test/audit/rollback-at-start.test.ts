import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { AuditRow, AuditVerifyReport } from '../../src/audit/index.ts'
import { STORE_DIR } from '../../src/mesh-info.ts'
import { MeshStore } from '../../src/store/index.ts'
import { startNode } from '../connections/nodes.ts'

// The log's own key layout, repeated on purpose: the test plays the attacker who edits the LevelDB.
const entryKey = (seq: number): string => `entry/v1/${String(seq).padStart(16, '0')}`

describe('a node whose audit log was cut back while it was stopped', () => {
  it('reports the rollback at start (audit.rollback_detected, /api/audit/verify not ok) against the checkpoint it keeps beside the store', async (t) => {
    const a = await startNode(t, 'alpha')
    for (let i = 0; i < 6; i++) await a.node.audit.append({ action: 'test.filler', details: { i } })
    const size = a.node.audit.head()?.seq ?? 0
    assert.equal((await a.api.get<AuditVerifyReport>('/api/audit/verify')).ok, true)
    await a.stop()

    // The last three rows go, and the stored head is rolled back with them (e.g. the
    // store directory restored from an older copy): a log consistent in itself.
    const store = new MeshStore({ path: join(a.dataDir, STORE_DIR) })
    await store.open()
    const sub = store.sublevel<unknown>('audit')
    const keep = size - 3
    const last = (await sub.get(entryKey(keep))) as AuditRow
    await sub.batch([
      ...[1, 2, 3].map((k) => ({ type: 'del' as const, key: entryKey(keep + k) })),
      { type: 'put', key: 'head/v1', value: { seq: keep, hash: last.hash } },
    ])
    await store.close()

    await a.restart()
    const report = await a.api.get<AuditVerifyReport>('/api/audit/verify')
    assert.equal(report.ok, false, 'a truncation with a rolled-back head must not verify')
    assert.ok(
      report.problems.some((p) => /truncated or rolled back/.test(p.message)),
      JSON.stringify(report.problems),
    )
    assert.ok(a.lines.some((l) => l.event === 'audit.rollback_detected'))
  })
})
