import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { runMesh } from '../../scripts/lib/processes.ts'
import type { AuditCheckpoint, AuditRow, AuditVerifyReport } from '../../src/audit/index.ts'
import { STORE_DIR } from '../../src/mesh-info.ts'
import { MeshStore } from '../../src/store/index.ts'
import { e2e, freePort } from '../fixtures/e2e.ts'

// Named here, not imported: the test runs (and fails on its assertions) against code without checkpoints.
const CHECKPOINT_FILE = 'audit-checkpoint.json'
const entryKey = (seq: number): string => `entry/v1/${String(seq).padStart(16, '0')}`

describe('audit checkpoints across processes, driven by the CLI', () => {
  it('mesh audit --checkpoint saves one; --verify --checkpoint catches a truncation with a rolled-back head that --verify alone passes', async (t) => {
    const { root, env, start, init, run, cli } = await e2e(t, 'mesh-audit-e2e-')
    const dir = join(root, 'alpha')
    await init('alpha', dir)
    const port = await freePort()
    const startNode = () =>
      start([
        'start',
        ...['--data', dir, '--http', `127.0.0.1:${port}`],
        ...['--listen', '/ip4/127.0.0.1/tcp/0', '--discovery-interval', '60000', '--probe-interval', '0'],
      ])
    let proc = await startNode()
    const m = { dir }
    // Each policy change is an audit row.
    const change = (mode: string) => cli(m, 'policy', '--mode', mode)
    await change('allowlist')
    await change('open')
    const early = await cli<AuditCheckpoint>(m, 'audit', '--checkpoint')
    await change('closed')
    await change('open')
    await change('allowlist')
    const saved = await cli<AuditCheckpoint>(m, 'audit', '--checkpoint')
    assert.ok(saved.size >= early.size + 3, `${early.size} → ${saved.size}`)
    assert.equal(saved.mesh, proc.did)
    // A person reads a log newest first (issue 14); --oldest from the start.
    type Page = { entries: Array<{ seq: number; action: string }> }
    const newest = await cli<Page>(m, 'audit', '--limit', '2')
    assert.deepEqual(
      newest.entries.map((e) => e.seq),
      [saved.size, saved.size - 1],
    )
    const oldest = await cli<Page>(m, 'audit', '--limit', '2', '--oldest')
    assert.deepEqual(
      oldest.entries.map((e) => e.seq),
      [1, 2],
    )
    const file = join(root, 'operator-checkpoint.json')
    await writeFile(file, JSON.stringify(saved))

    // Untouched: ok against the saved checkpoint, from a file or inline JSON.
    const fine = await cli<AuditVerifyReport>(m, 'audit', '--verify', '--checkpoint', file)
    assert.equal(fine.ok, true)
    assert.equal(
      (await cli<AuditVerifyReport>(m, 'audit', '--verify', '--checkpoint', JSON.stringify(saved))).ok,
      true,
    )

    // The attacker, with the whole data dir, node stopped: the log cut back to `early`,
    // the head rolled back with it, and the local checkpoint file rolled back too.
    await proc.stop('SIGTERM')
    const store = new MeshStore({ path: join(dir, STORE_DIR) })
    await store.open()
    const sub = store.sublevel<unknown>('audit')
    const last = (await sub.get(entryKey(early.size))) as AuditRow
    const removed: string[] = []
    for await (const key of sub.keys({ gt: entryKey(early.size), lt: 'entry/v1/~' })) removed.push(key)
    await sub.batch([
      ...removed.map((key) => ({ type: 'del' as const, key })),
      { type: 'put', key: 'head/v1', value: { seq: early.size, hash: last.hash } },
    ])
    await store.close()
    await writeFile(join(dir, CHECKPOINT_FILE), JSON.stringify(early))
    proc = await startNode()

    // The attack of finding 9: the log alone verifies.
    const alone = await run<AuditVerifyReport>(m, 'audit', '--verify')
    assert.equal(alone.code, 0, alone.stderr)
    assert.equal(alone.out.ok, true)

    // The operator's saved checkpoint is out of the attacker's reach: exit 1, named.
    for (const arg of [file, JSON.stringify(saved)]) {
      const caught = await run<AuditVerifyReport>(m, 'audit', '--verify', '--checkpoint', arg)
      assert.equal(caught.code, 1)
      assert.equal(caught.out.ok, false)
      assert.ok(
        caught.out.problems.some((p) => p.kind === 'truncated' && /truncated or rolled back/.test(p.message)),
        JSON.stringify(caught.out.problems),
      )
    }
    const human = await runMesh(['audit', '--verify', '--checkpoint', file, '--data', dir], env)
    assert.equal(human.code, 1)
    assert.match(human.stdout, /audit log NOT ok/)
    assert.match(human.stdout, /truncated or rolled back/)

    // A checkpoint not signed by this mesh is refused, not compared.
    const forged = await run(m, 'audit', '--verify', '--checkpoint', JSON.stringify({ ...saved, size: 1 }))
    assert.equal(forged.code, 1)
    assert.equal(forged.out.error?.code, 'MESH_SIGNATURE_MISMATCH')
  })
})
