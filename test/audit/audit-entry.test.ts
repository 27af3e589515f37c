import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkEntry, checkExtraOperations } from '../../src/audit/audit-entry.ts'
import { alice, tempStore } from '../fixtures/principals.ts'

describe('audit entry checks', () => {
  it('fills absent fields with null and keeps details as their canonical JSON', () => {
    const checked = checkEntry({ action: 'test.row', details: { b: 1, a: undefined, z: -0 } })
    assert.deepEqual(checked, { action: 'test.row', actor: null, subject: null, details: { b: 1, z: 0 } })
    assert.ok(!Object.is(checked.details.z, -0))
    assert.equal(checkEntry({ action: 'a.b', actor: alice.did }).actor, alice.did)
  })

  it('refuses a bad action, a non-DID actor, a long subject, array details and details over 8 KiB', () => {
    const bad = (entry: unknown, code: string) =>
      assert.throws(
        () => checkEntry(entry as never),
        (err: Error & { code?: string }) => err.code === code,
      )
    bad(null, 'MESH_BAD_REQUEST')
    bad({ action: 'Not Valid' }, 'MESH_BAD_REQUEST')
    bad({ action: 'a.b', actor: 'alice' }, 'MESH_BAD_REQUEST')
    bad({ action: 'a.b', subject: 'x'.repeat(513) }, 'MESH_BAD_REQUEST')
    bad({ action: 'a.b', details: [] }, 'MESH_BAD_REQUEST')
    bad({ action: 'a.b', details: { big: 'x'.repeat(9000) } }, 'MESH_TOO_LARGE')
  })

  it('lets the caller’s operations through, copied, unless they touch the audit sublevel', async (t) => {
    const store = await tempStore(t)
    const audit = store.sublevel('audit')
    const other = store.sublevel('trust')
    const ops = [{ type: 'put' as const, sublevel: other, key: 'k', value: 1 }]
    const copy = checkExtraOperations(ops, audit)
    assert.deepEqual(copy, ops)
    assert.notEqual(copy, ops)
    assert.throws(
      () => checkExtraOperations([{ type: 'put', sublevel: audit, key: 'head/v1', value: 1 }], audit),
      (err: Error & { code?: string }) => err.code === 'MESH_BAD_REQUEST',
    )
    assert.throws(() => checkExtraOperations('nope' as never, audit), /array/)
  })
})
