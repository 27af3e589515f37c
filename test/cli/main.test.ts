import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runMesh } from '../../scripts/lib/processes.ts'
import { ERROR_MEANING } from '../../src/errors.ts'

// The real `mesh` process: groups wired to the formatter, and the exit status it ends with.
describe('the mesh command', () => {
  it('prints a command’s answer as text, or as JSON with --json, and exits 0', async () => {
    const text = await runMesh(['errors'])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^MESH_BAD_REQUEST\s+\S/m)
    const json = await runMesh(['--json', 'errors'])
    assert.equal(json.code, 0, json.stderr)
    assert.deepEqual(JSON.parse(json.stdout), ERROR_MEANING)
  })

  it('a failing command prints `error MESH_…` (and its JSON shape under --json) and exits 1', async () => {
    const res = await runMesh(['--json', 'trust', 'did:key:z6Mk', '--tier', '5'])
    assert.equal(res.code, 1)
    assert.equal(res.stderr, 'error MESH_BAD_REQUEST: a tier is 2, 3 or 4\n')
    assert.deepEqual(JSON.parse(res.stdout), {
      error: { code: 'MESH_BAD_REQUEST', message: 'a tier is 2, 3 or 4', details: {} },
    })
    const text = await runMesh(['status', '--data', '/nonexistent-mesh-dir'])
    assert.equal(text.code, 1)
    assert.equal(text.stdout, '')
    assert.match(text.stderr, /^error MESH_UNAVAILABLE: no running node found for \/nonexistent-mesh-dir/)
  })
})
