import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import {
  type AuditCheckpoint,
  AuditLog,
  type AuditRow,
  CHECKPOINT_FILE,
  CheckpointGossip,
  compareCheckpoints,
  isSignedCheckpoint,
  parseCheckpoint,
  signCheckpoint,
} from '../../src/audit/index.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import type { MeshStore } from '../../src/store/index.ts'
import { alice, bob, mallory, tempDir, tempStore } from '../fixtures/principals.ts'
import { captureLogger } from '../p2p/nodes.ts'

// The log's own key layout, repeated on purpose: these tests play the attacker who
// edits the LevelDB directly.
const entryKey = (seq: number): string => `entry/v1/${String(seq).padStart(16, '0')}`
const raw = (store: MeshStore) => store.sublevel<unknown>('audit')

/** Cuts the log back to `size` rows and rolls the stored head back with it: a log consistent in itself. */
async function rollBack(store: MeshStore, size: number): Promise<void> {
  const sub = raw(store)
  const last = (await sub.get(entryKey(size))) as AuditRow
  const removed: string[] = []
  for await (const key of sub.keys({ gt: entryKey(size), lt: 'entry/v1/~' })) removed.push(key)
  assert.ok(removed.length > 0, 'nothing to cut')
  await sub.batch([
    ...removed.map((key) => ({ type: 'del' as const, key })),
    { type: 'put', key: 'head/v1', value: { seq: size, hash: last.hash } },
  ])
}

async function fill(audit: AuditLog, n: number, tag = 'row'): Promise<void> {
  for (let i = 0; i < n; i++) {
    await audit.append({ action: 'federation.connection.requested', subject: `${tag}-${i}`, details: { i } })
  }
}

interface Run {
  audit: AuditLog
  logger: ReturnType<typeof captureLogger>['logger']
  lines: Array<Record<string, unknown>>
}

/** An audit log on `store`, as one run of a node: stopped at teardown (or by the test). */
async function run(
  t: TestContext,
  store: MeshStore,
  init: { key?: Ed25519KeyPair; checkpointFile?: string; mesh?: string } = {},
): Promise<Run> {
  const { logger, lines } = captureLogger()
  const audit = new AuditLog({ store, key: init.key ?? alice, logger, ...init })
  await audit.start()
  t.after(() => audit.stop())
  return { audit, logger, lines: lines as Array<Record<string, unknown>> }
}

describe('audit checkpoints', () => {
  it('sign {mesh, size, head, ts, signer}; a changed field or another signer does not verify', () => {
    const cp = signCheckpoint(alice, {
      mesh: alice.did,
      size: 3,
      head: 'a'.repeat(64),
      ts: new Date().toISOString(),
    })
    assert.ok(isSignedCheckpoint(cp))
    assert.deepEqual(parseCheckpoint(cp, new Set([alice.did])), cp)
    assert.equal(isSignedCheckpoint({ ...cp, size: 4 }), false)
    assert.equal(isSignedCheckpoint({ ...cp, signer: mallory.did }), false)
    assert.throws(() => parseCheckpoint({ ...cp, size: 2 }), { code: 'MESH_SIGNATURE_MISMATCH' })
    assert.throws(() => parseCheckpoint({ ...cp, extra: 1 }), { code: 'MESH_BAD_REQUEST' })
    const forged = signCheckpoint(mallory, { mesh: alice.did, size: 9, head: 'b'.repeat(64), ts: cp.ts })
    assert.throws(() => parseCheckpoint(forged, new Set([alice.did])), { code: 'MESH_SIGNATURE_MISMATCH' })
  })

  it('compare: a later shorter or same-size-other-head checkpoint contradicts an earlier one; a late copy does not', () => {
    const at = (size: number, head: string, ms: number) =>
      signCheckpoint(alice, { mesh: alice.did, size, head: head.repeat(64), ts: new Date(ms).toISOString() })
    const held = at(10, 'a', 2000)
    assert.equal(compareCheckpoints(held, at(10, 'a', 3000)), 'same')
    assert.equal(compareCheckpoints(held, at(12, 'c', 3000)), 'longer')
    assert.equal(compareCheckpoints(held, at(7, 'c', 3000)), 'shorter')
    assert.equal(compareCheckpoints(held, at(10, 'c', 3000)), 'forked')
    assert.equal(compareCheckpoints(held, at(7, 'c', 1000)), 'stale')
  })

  it('a truncation that rolls the head back verifies on its own, but not against a checkpoint taken before', async (t) => {
    const store = await tempStore(t)
    const { audit } = await run(t, store)
    await fill(audit, 10)
    const saved = audit.checkpoint()
    assert.equal(saved.size, 10)
    await audit.stop()
    await rollBack(store, 7)

    const { audit: after } = await run(t, store)
    // The attack of finding 9: the log alone says ok.
    assert.equal((await after.verify()).ok, true)
    const report = await after.verify({ checkpoint: { seq: saved.size, hash: saved.head } })
    assert.equal(report.ok, false)
    const problem = report.problems.find((p) => p.kind === 'truncated')
    assert.ok(problem, JSON.stringify(report.problems))
    assert.match(problem.message, /truncated or rolled back/)
  })

  it('the local checkpoint file catches a truncation with a rolled-back head at start, and is kept as evidence', async (t) => {
    const store = await tempStore(t)
    const file = join(await tempDir(t), CHECKPOINT_FILE)
    const first = await run(t, store, { checkpointFile: file })
    await fill(first.audit, 10)
    await first.audit.stop()
    const written = JSON.parse(await readFile(file, 'utf8')) as AuditCheckpoint
    assert.ok(isSignedCheckpoint(written))
    assert.equal(written.size, 10)
    assert.equal(written.mesh, alice.did)

    await rollBack(store, 6)
    const second = await run(t, store, { checkpointFile: file })
    const report = await second.audit.verify()
    assert.equal(report.ok, false, 'the rollback must show in verify')
    const problem = report.problems.find((p) => p.kind === 'rolled-back')
    assert.ok(problem, JSON.stringify(report.problems))
    assert.match(problem.message, /6 rows but a checkpoint .* saw 10: truncated or rolled back/)
    assert.ok(
      second.lines.some((l) => l.event === 'audit.rollback_detected' && l.source === 'local-checkpoint'),
    )
    // The detection is itself in the chain, with the checkpoint it contradicts.
    const rows = (await second.audit.list({ action: 'audit.rollback_detected' })).entries
    assert.equal(rows.length, 1)
    assert.deepEqual((rows[0] as AuditRow).details.checkpoint, written)
    // Later appends do not overwrite the evidence.
    await fill(second.audit, 2, 'later')
    await second.audit.stop()
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), written)
  })

  it('the local checkpoint file catches row n rewritten (and re-signed) under the same size', async (t) => {
    const store = await tempStore(t)
    const file = join(await tempDir(t), CHECKPOINT_FILE)
    const first = await run(t, store, { checkpointFile: file })
    await fill(first.audit, 5)
    await first.audit.stop()
    // With the mesh key (it is in the data dir too), the attacker rewrites row 5 consistently.
    await rollBack(store, 4)
    const rewrite = await run(t, store)
    await rewrite.audit.append({ action: 'federation.connection.requested', subject: 'rewritten' })
    await rewrite.audit.stop()

    const third = await run(t, store, { checkpointFile: file })
    const report = await third.audit.verify()
    assert.equal(report.ok, false)
    assert.ok(
      report.problems.some(
        (p) => p.kind === 'rolled-back' && p.seq === 5 && /history rewritten/.test(p.message),
      ),
      JSON.stringify(report.problems),
    )
  })

  it('an untouched log starts clean against its checkpoint file, which follows every append', async (t) => {
    const store = await tempStore(t)
    const file = join(await tempDir(t), CHECKPOINT_FILE)
    const first = await run(t, store, { checkpointFile: file })
    await fill(first.audit, 4)
    await first.audit.stop()
    const second = await run(t, store, { checkpointFile: file })
    assert.deepEqual(await second.audit.verify(), {
      ok: true,
      count: 4,
      head: second.audit.head(),
      problems: [],
    })
    assert.ok(!second.lines.some((l) => l.event === 'audit.rollback_detected'))
    await fill(second.audit, 3)
    await second.audit.stop()
    assert.equal((JSON.parse(await readFile(file, 'utf8')) as AuditCheckpoint).size, 7)
  })

  it('a checkpoint file replaced by one mallory signed is reported, not trusted', async (t) => {
    const store = await tempStore(t)
    const file = join(await tempDir(t), CHECKPOINT_FILE)
    const first = await run(t, store, { checkpointFile: file })
    await fill(first.audit, 3)
    await first.audit.stop()
    const forged = signCheckpoint(mallory, {
      mesh: alice.did,
      size: 1,
      head: 'f'.repeat(64),
      ts: new Date().toISOString(),
    })
    await writeFile(file, JSON.stringify(forged))
    const second = await run(t, store, { checkpointFile: file })
    const report = await second.audit.verify()
    assert.equal(report.ok, false)
    assert.match(report.problems[0]?.message ?? '', /not signed by this mesh/)
  })

  it('an attacker who rolls back both the store and the local file is not caught locally (only a copy held elsewhere catches it)', async (t) => {
    const store = await tempStore(t)
    const file = join(await tempDir(t), CHECKPOINT_FILE)
    const first = await run(t, store, { checkpointFile: file })
    await fill(first.audit, 6)
    const early = first.audit.checkpoint()
    await fill(first.audit, 4)
    const operatorCopy = first.audit.checkpoint()
    await first.audit.stop()
    await rollBack(store, early.size)
    await writeFile(file, JSON.stringify(early))

    const second = await run(t, store, { checkpointFile: file })
    assert.equal((await second.audit.verify()).ok, true)
    // The operator's saved checkpoint is the copy the attacker could not reach.
    const report = await second.audit.verify({
      checkpoint: { seq: operatorCopy.size, hash: operatorCopy.head },
    })
    assert.equal(report.ok, false)
  })
})

describe('checkpoint gossip (in memory)', () => {
  /** Two meshes' logs and gossips; `swap(from)` is one exchange `from` starts. */
  async function pair(t: TestContext) {
    const stores = { a: await tempStore(t), b: await tempStore(t) }
    const a = await run(t, stores.a, { key: alice })
    const b = await run(t, stores.b, { key: bob })
    const gossip = {
      a: new CheckpointGossip({ audit: a.audit, logger: a.logger }),
      b: new CheckpointGossip({ audit: b.audit, logger: b.logger }),
    }
    return { stores, a, b, gossip }
  }

  it('a peer holding an earlier checkpoint catches a later shorter one, and hands it back so the rolled-back mesh sees it', async (t) => {
    const { stores, a, b, gossip } = await pair(t)
    await fill(a.audit, 8)
    const sent = await gossip.a.outgoing(bob.did)
    assert.ok(sent)
    await gossip.a.answered(bob.did, [bob.did], sent, await gossip.b.incoming(alice.did, [alice.did], sent))
    assert.equal((await b.audit.peerCheckpoint(alice.did))?.checkpoint.size, 8)
    assert.equal(await gossip.a.outgoing(bob.did), undefined, 'nothing new to send')

    // alice's store is cut back to 5 rows, head rolled back; she restarts.
    await a.audit.stop()
    await rollBack(stores.a, 5)
    const restarted = await run(t, stores.a, { key: alice })
    assert.equal((await restarted.audit.verify()).ok, true)
    const gossipA = new CheckpointGossip({ audit: restarted.audit })
    const again = await gossipA.outgoing(bob.did)
    assert.ok(again)
    assert.equal(again.checkpoint.size, 5)
    const reply = await gossip.b.incoming(alice.did, [alice.did], again)

    // bob: the contradiction, recorded once with both signed checkpoints; he keeps the earlier one.
    const held = await b.audit.peerCheckpoint(alice.did)
    assert.equal(held?.checkpoint.size, 8)
    assert.equal(held?.conflict?.relation, 'shorter')
    const rows = (await b.audit.list({ action: 'federation.peer.audit_rollback' })).entries
    assert.equal(rows.length, 1)
    assert.equal((rows[0] as AuditRow).details.relation, 'shorter')
    assert.ok(b.lines.some((l) => l.event === 'audit.peer_rollback_detected'))
    await gossip.b.incoming(alice.did, [alice.did], again)
    assert.equal((await b.audit.list({ action: 'federation.peer.audit_rollback' })).entries.length, 1)

    // alice: bob handed back what he holds of her log; hers no longer extends it.
    assert.equal(reply.held?.size, 8)
    await gossipA.answered(bob.did, [bob.did], again, reply)
    const report = await restarted.audit.verify()
    assert.equal(report.ok, false)
    assert.ok(
      report.problems.some((p) => p.kind === 'rolled-back' && p.message.includes(`peer:${bob.did}`)),
      JSON.stringify(report.problems),
    )
    assert.ok(restarted.lines.some((l) => l.event === 'audit.rollback_detected'))
  })

  it('a later longer checkpoint replaces the one held; a checkpoint signed by another key is not kept', async (t) => {
    const { a, b, gossip } = await pair(t)
    await fill(a.audit, 2)
    const first = (await gossip.a.outgoing(bob.did)) as NonNullable<
      Awaited<ReturnType<CheckpointGossip['outgoing']>>
    >
    await gossip.b.incoming(alice.did, [alice.did], first)
    await fill(a.audit, 3)
    const second = (await gossip.a.outgoing(bob.did)) as typeof first
    const reply = await gossip.b.incoming(alice.did, [alice.did], second)
    assert.equal((await b.audit.peerCheckpoint(alice.did))?.checkpoint.size, 5)
    await gossip.a.answered(bob.did, [bob.did], second, reply)
    assert.equal((await a.audit.verify()).ok, true)

    const forged = {
      checkpoint: signCheckpoint(mallory, {
        mesh: alice.did,
        size: 1,
        head: 'e'.repeat(64),
        ts: new Date().toISOString(),
      }),
      held: null,
    }
    await gossip.b.incoming(alice.did, [alice.did], forged)
    assert.equal((await b.audit.peerCheckpoint(alice.did))?.checkpoint.size, 5)
    assert.equal((await b.audit.verify()).ok, true)
  })
})
