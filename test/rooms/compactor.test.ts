import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { inlineCompactor, workerCompactor } from '../../src/rooms/compactor.ts'
import { RoomLog } from '../../src/rooms/room-log.ts'
import { tempStore } from '../fixtures/principals.ts'

/** `n` updates of one writer, one map entry each, and the document they make. */
function writes(n: number): { doc: Y.Doc; updates: Uint8Array[] } {
  const doc = new Y.Doc({ gc: false })
  doc.clientID = 11
  const updates: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => updates.push(u))
  for (let i = 0; i < n; i++) doc.getMap('messages').set(`m${i}`, { body: `message ${i}` })
  doc.getMap('messages').delete('m3')
  return { doc, updates }
}

function docOf(parts: Uint8Array[]): Y.Doc {
  const doc = new Y.Doc({ gc: false })
  doc.transact(() => {
    for (const part of parts) Y.applyUpdate(doc, part)
  })
  assert.equal(doc.store.pendingStructs, null)
  return doc
}

describe('room-log compactor (issue 15, p99)', () => {
  it('merges on its worker what Y.mergeUpdates merges here', async () => {
    const { doc, updates } = writes(300)
    const merged = await workerCompactor().merge([
      Y.mergeUpdates(updates.slice(0, 100)),
      ...updates.slice(100),
    ])
    assert.deepEqual(merged, Y.mergeUpdates(updates))
    assert.deepEqual(docOf([merged]).getMap('messages').toJSON(), doc.getMap('messages').toJSON())
  })

  it('merges on the main thread when its worker cannot run, and goes on doing so', async () => {
    const { updates } = writes(50)
    const broken = workerCompactor(new URL('./no-such-worker.ts', import.meta.url))
    assert.deepEqual(await broken.merge(updates), Y.mergeUpdates(updates))
    assert.deepEqual(await broken.merge(updates.slice(0, 10)), Y.mergeUpdates(updates.slice(0, 10)))
  })

  it('a log whose joins merge on the worker reloads to the same document as one whose joins encode here', async (t) => {
    const { doc, updates } = writes(400)
    const reloaded: Y.Doc[] = []
    const merges: number[] = []
    const counted = workerCompactor()
    const worker = {
      merge: (parts: Uint8Array[]) => {
        merges.push(parts.length)
        return counted.merge(parts)
      },
    }
    for (const [compactor, inlineJoinBytes] of [
      [worker, 0],
      [inlineCompactor, undefined],
    ] as const) {
      const store = await tempStore(t)
      const live = new Y.Doc({ gc: false })
      const log = new RoomLog({
        store,
        room: 'c'.repeat(32),
        doc: live,
        compactEvery: 20,
        compactor,
        ...(inlineJoinBytes !== undefined ? { inlineJoinBytes } : {}),
        onFailure: (err) => {
          throw err
        },
      })
      await log.read()
      for (const [i, u] of updates.entries()) {
        Y.applyUpdate(live, u)
        const written = log.append(u)
        if (i % 10 === 9) await written
      }
      await log.drain()
      const again = new RoomLog({ store, room: 'c'.repeat(32), doc: new Y.Doc(), onFailure: () => {} })
      reloaded.push(docOf(await again.read()))
    }
    assert.ok(merges.length > 0 && merges.every((n) => n >= 2), `${merges}`)
    for (const d of reloaded) {
      assert.deepEqual(d.getMap('messages').toJSON(), doc.getMap('messages').toJSON())
      assert.deepEqual(Y.encodeStateVector(d), Y.encodeStateVector(doc))
    }
  })
})
