import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { GroupCommit } from '../../src/store/group-commit.ts'
import type { StoreOperation } from '../../src/store/index.ts'
import { tempStore } from '../fixtures/principals.ts'

/** A write that records each call and waits for `release` before it resolves. */
function heldWrites() {
  const writes: string[][] = []
  let release: () => void = () => {}
  let held = new Promise<void>((r) => {
    release = r
  })
  const write = async (ops: string[]) => {
    writes.push(ops)
    if (ops.includes('bad')) throw new Error('refused')
    await held
  }
  return {
    writes,
    write,
    release: () => {
      release()
      held = Promise.resolve()
    },
  }
}

describe('group commit (issue 15)', () => {
  it('writes the batches of one tick as one write, and those given meanwhile as the next, in order', async () => {
    const w = heldWrites()
    const group = new GroupCommit<string>(w.write)
    const done: string[] = []
    const commit = (ops: string[]) => group.commit(ops).then(() => done.push(ops.join()))
    const first = [commit(['a1', 'a2']), commit(['b1']), commit(['c1'])]
    await new Promise((r) => setImmediate(r))
    assert.deepEqual(w.writes, [['a1', 'a2', 'b1', 'c1']])
    // While that write is held, more arrive: they wait, and then go together.
    const second = [commit(['d1']), commit(['e1'])]
    await new Promise((r) => setImmediate(r))
    assert.equal(w.writes.length, 1)
    assert.deepEqual(done, [])
    w.release()
    await Promise.all([...first, ...second])
    assert.deepEqual(w.writes, [
      ['a1', 'a2', 'b1', 'c1'],
      ['d1', 'e1'],
    ])
    assert.deepEqual(done, ['a1,a2', 'b1', 'c1', 'd1', 'e1'])
    assert.deepEqual(group.stats, { writes: 2, batches: 5 })
  })

  it('a batch that LevelDB refuses fails alone: the others of its write are written', async () => {
    const w = heldWrites()
    w.release()
    const group = new GroupCommit<string>(w.write)
    const results = await Promise.allSettled([
      group.commit(['a']),
      group.commit(['bad']),
      group.commit(['c']),
    ])
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    )
    // The merged write, then each batch alone, in order.
    assert.deepEqual(w.writes, [['a', 'bad', 'c'], ['a'], ['bad'], ['c']])
  })

  it('a write that throws at once (a store not open) rejects its callers and the next batches still go', async () => {
    let open = false
    const written: string[][] = []
    const group = new GroupCommit<string>((ops) => {
      if (!open) throw new Error('not open')
      written.push(ops)
      return Promise.resolve()
    })
    await assert.rejects(group.commit(['a']), /not open/)
    await assert.rejects(Promise.all([group.commit(['b']), group.commit(['c'])]), /not open/)
    open = true
    await group.commit(['d'])
    assert.deepEqual(written, [['d']])
    await group.settled()
  })

  it("MeshStore: one tick's batches on several sublevels in one write; a malformed one refused alone", async (t) => {
    const store = await tempStore(t)
    const rooms = store.sublevel('rooms')
    const notes = store.sublevel('notifications')
    const before = store.groupStats
    const put = (sublevel: typeof rooms, key: string, value: unknown) =>
      ({ type: 'put', sublevel, key, value }) as StoreOperation
    const results = await Promise.allSettled([
      store.batch([put(rooms, 'r1', 1), put(notes, 'n1', 1)]),
      store.batch([put(rooms, 'r2', 2)]),
      store.batch([{ type: 'put', sublevel: rooms, key: null, value: 3 } as unknown as StoreOperation]),
      store.batch([put(rooms, 'r1', 'last write wins')]),
    ])
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
    )
    assert.equal(await rooms.get('r1'), 'last write wins')
    assert.equal(await rooms.get('r2'), 2)
    assert.equal(await notes.get('n1'), 1)
    const after = store.groupStats
    assert.equal(after.batches - before.batches, 4)
    // One merged write (refused), then each alone.
    assert.equal(after.writes - before.writes, 1)
  })

  it('MeshStore.close waits for the batches still waiting for a write', async (t) => {
    const store = await tempStore(t)
    const sub = store.sublevel('rooms')
    const writes = Array.from({ length: 50 }, (_, i) =>
      store.batch([{ type: 'put', sublevel: sub, key: `k${i}`, value: i } as StoreOperation]),
    )
    await store.close()
    await Promise.all(writes)
    await store.open()
    assert.equal(await sub.get('k49'), 49)
  })
})
