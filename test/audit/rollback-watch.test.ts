import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type AuditEntryInput, AuditLog, signCheckpoint } from '../../src/audit/index.ts'
import { RollbackWatch } from '../../src/audit/rollback-watch.ts'
import { silentLogger } from '../../src/log.ts'
import { alice, mallory, tempStore } from '../fixtures/principals.ts'

describe('rollback watch', () => {
  it('reports a log cut back behind a witnessed checkpoint once, and ignores checkpoints not of this mesh', async (t) => {
    const store = await tempStore(t)
    const audit = new AuditLog({ store, key: alice })
    await audit.start()
    t.after(() => audit.stop())
    for (let i = 0; i < 3; i++) await audit.append({ action: 'test.row', details: { i } })
    const seen = audit.checkpoint()
    const head = audit.head()

    // The watch sees a log whose head is back at row 2.
    const appended: AuditEntryInput[] = []
    const watch = new RollbackWatch(
      {
        sublevel: store.sublevel('audit'),
        logger: silentLogger(),
        head: () => ({ seq: 2, hash: 'x'.repeat(64) }),
        checkpoint: () => seen,
        knownKeys: () => new Set([alice.did]),
        append: async (entry) => {
          appended.push(entry)
        },
      },
      { mesh: alice.did },
    )
    assert.equal(await watch.witness({ not: 'a checkpoint' }, 'peer-a'), 'ignored')
    const forged = signCheckpoint(mallory, {
      mesh: alice.did,
      size: 1,
      head: head?.hash ?? null,
      ts: seen.ts,
    })
    assert.equal(await watch.witness(forged, 'peer-a'), 'ignored')
    assert.equal(watch.problems.length, 0)

    assert.equal(await watch.witness(seen, 'peer-a'), 'rolled-back')
    assert.equal(await watch.witness(seen, 'peer-a'), 'rolled-back')
    assert.equal(watch.problems.length, 1, 'the same checkpoint from the same source is reported once')
    assert.equal(watch.problems[0]?.kind, 'rolled-back')
    assert.equal(watch.problems[0]?.seq, 3)
    assert.match(watch.problems[0]?.message ?? '', /\(peer-a\)$/)
    assert.equal(appended.length, 1)
    assert.equal(appended[0]?.action, 'audit.rollback_detected')
    assert.equal(appended[0]?.subject, 'peer-a')

    // Another source handing back the same checkpoint is a second report.
    assert.equal(await watch.witness(seen, 'peer-b'), 'rolled-back')
    assert.equal(watch.problems.length, 2)
    assert.equal(appended.length, 2)
  })

  it('a checkpoint the log still extends is ok, and one of size 0 always is', async (t) => {
    const store = await tempStore(t)
    const audit = new AuditLog({ store, key: alice })
    await audit.start()
    t.after(() => audit.stop())
    await audit.append({ action: 'test.row' })
    const earlier = audit.checkpoint()
    await audit.append({ action: 'test.row' })
    const empty = signCheckpoint(alice, { mesh: alice.did, size: 0, head: null, ts: earlier.ts })
    const watch = new RollbackWatch(
      {
        sublevel: store.sublevel('audit'),
        logger: silentLogger(),
        head: () => audit.head(),
        checkpoint: () => audit.checkpoint(),
        knownKeys: () => new Set([alice.did]),
        append: () => assert.fail('nothing to report'),
      },
      { mesh: alice.did },
    )
    assert.equal(await watch.witness(earlier, 'peer'), 'ok')
    assert.equal(await watch.witness(empty, 'peer'), 'ok')
    assert.equal(watch.problems.length, 0)
  })
})
