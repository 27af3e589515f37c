import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { countEntries, splitDiff } from '../../src/rooms/backfill.ts'
import { alice, bob, content, manager, meshA, meshB } from './helpers.ts'

describe('backfill: a state-vector diff split into chunks', () => {
  it('each chunk is a complete update a receiver accepts on its own, within the entry limit', async (t) => {
    const home = await manager(t, meshA)
    const { id } = await home.create({ name: 'general', creator: alice.did })
    await home.join(id, bob.did)
    for (let i = 0; i < 57; i++) await home.post(id, i % 2 ? alice.did : bob.did, `message ${i}`)
    const room = await home.load(id)
    const far = await manager(t, meshB)
    await far.adopt({ id, homeMesh: meshA.did })
    const copy = await far.load(id)
    // The first half arrives whole; the rest in chunks of at most 7 entries.
    const half = splitDiff(room.doc, Y.encodeStateVector(copy.doc), { maxEntries: 7 })
    assert.ok(half.chunks.length >= 9, `chunks: ${half.chunks.length}`)
    assert.ok(half.entries.every((n) => n <= 7))
    assert.equal(half.totalEntries, 57 + 3) // messages, meta, two members
    let applied = 0
    for (const chunk of half.chunks) {
      assert.equal(countEntries(chunk), half.entries[applied])
      const result = await copy.applyUpdate(chunk, { kind: 'peer', meshDid: meshA.did })
      assert.equal(result.error, undefined, result.error?.message ?? '')
      applied++
    }
    assert.deepEqual(content(copy), content(room))
    assert.deepEqual(Y.encodeStateVector(copy.doc), Y.encodeStateVector(room.doc))
    assert.equal(splitDiff(room.doc, Y.encodeStateVector(copy.doc)).chunks.length, 0)
    // Byte-bounded too: a diff larger than one update may be is split even without an entry limit.
    const big = await home.create({ name: 'big', creator: alice.did })
    for (let i = 0; i < 120; i++) await home.post(big.id, alice.did, `${i} ${'x'.repeat(4000)}`)
    const plan = splitDiff((await home.load(big.id)).doc, undefined, { maxEntries: 0 })
    assert.ok(
      plan.chunks.length > 1,
      JSON.stringify({ n: plan.chunks.length, e: plan.entries, b: plan.totalBytes }),
    )
    assert.ok(plan.chunks.every((c) => c.byteLength <= 256 * 1024))
  })
})
