import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { runMesh } from '../../scripts/lib/processes.ts'
import { AuditLog, type EquivocationProof } from '../../src/audit/index.ts'
import { alice, bob, tempDir, tempStore } from '../fixtures/principals.ts'

async function head(t: TestContext, rows: number, tag: string) {
  let clock = Date.parse('2026-01-01T00:00:00Z')
  const log = new AuditLog({ store: await tempStore(t), key: alice, now: () => (clock += 1000) })
  await log.start()
  t.after(() => log.stop())
  for (let i = 0; i < rows; i++) await log.append({ action: 'test.row', details: { i, tag } })
  return log.treeHead()
}

// `mesh audit check <file>`: offline, no node, no session.
describe('mesh audit check', () => {
  it('exits 0 on a proof that holds, 1 with the check’s code on one that does not', async (t) => {
    const dir = await tempDir(t)
    const proof: EquivocationProof = {
      v: 1,
      mesh: alice.did,
      older: await head(t, 3, 'x'),
      newer: await head(t, 3, 'y'),
      prefixRoot: null,
      path: [],
      rotation: [],
      foundBy: bob.did,
      foundAt: '2026-01-01T00:00:00Z',
    }
    const write = async (name: string, value: unknown) => {
      const file = join(dir, name)
      await writeFile(file, JSON.stringify(value))
      return file
    }
    const good = await runMesh(['--json', 'audit', 'check', await write('good.json', proof)])
    assert.equal(good.code, 0, good.stderr)
    assert.equal(JSON.parse(good.stdout).ok, true)
    const text = await runMesh(['audit', 'check', await write('good2.json', proof)])
    assert.match(text.stdout, /^equivocation proof holds/)

    const cases: [unknown, string][] = [
      [{ ...proof, newer: { ...proof.newer, root: 'ab'.repeat(32) } }, 'MESH_SIGNATURE_MISMATCH'],
      [{ ...proof, newer: proof.older }, 'MESH_PROOF_INVALID'],
      [{ nothing: true }, 'MESH_BAD_REQUEST'],
    ]
    for (const [i, [value, code]] of cases.entries()) {
      const res = await runMesh(['--json', 'audit', 'check', await write(`bad${i}.json`, value)])
      assert.equal(res.code, 1, res.stdout)
      assert.equal(JSON.parse(res.stdout).error.code, code)
    }
    const missing = await runMesh(['--json', 'audit', 'check', join(dir, 'none.json')])
    assert.equal(JSON.parse(missing.stdout).error.code, 'MESH_BAD_REQUEST')
  })
})
