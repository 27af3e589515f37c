import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { cidOf } from '../../src/files/index.ts'
import { parseRange } from '../../src/http/routes/files.ts'
import { attachmentsOk } from '../../src/rooms/attachments.ts'
import { type MessageEntry, refusalOf } from '../../src/rooms/index.ts'
import { boundWrite, carol, meshB, sharedRoom, sync } from '../rooms/helpers.ts'

const CID = cidOf(Buffer.from('a file'))
const good = { cid: CID, name: 'report.pdf', size: 6, mime: 'application/pdf' }

describe('attachments on messages (issue 18)', () => {
  it('shape: at most 10, distinct CIDs, a name without path, a MIME type, a v1 raw sha-256 CID', () => {
    assert.ok(attachmentsOk(undefined))
    assert.ok(attachmentsOk([good]))
    const many = Array.from({ length: 11 }, (_, i) => ({ ...good, cid: cidOf(Buffer.from(`f${i}`)) }))
    assert.ok(attachmentsOk(many.slice(0, 10)))
    for (const bad of [
      [],
      many,
      [good, good],
      [{ ...good, name: '../etc/passwd' }],
      [{ ...good, name: 'a\nb' }],
      [{ ...good, name: 'x'.repeat(256) }],
      [{ ...good, mime: 'text' }],
      [{ ...good, mime: 'text/html; charset=utf-8' }],
      [{ ...good, size: -1 }],
      [{ ...good, size: 1.5 }],
      [{ ...good, cid: CID.toUpperCase() }],
      [{ ...good, cid: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi' }], // dag-pb, not raw
      [{ ...good, extra: 1 }],
      'not a list',
    ])
      assert.equal(attachmentsOk(bad), false, JSON.stringify(bad).slice(0, 80))
  })

  it('a peer’s message with malformed attachments is refused whole; a well-formed one is applied', async (t) => {
    const w = await sharedRoom(t)
    assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
    const entry = (attachments: unknown): MessageEntry =>
      ({
        v: 1,
        room: w.id,
        author: carol.did,
        authorMesh: meshB.did,
        body: 'with files',
        mentions: [],
        ts: Date.now(),
        attachments,
      }) as MessageEntry
    const bad = boundWrite(w.roomA, meshB, [entry([{ ...good, name: '../x' }])], 777_001)
    const refused = refusalOf(await w.roomA.applyUpdate(bad, { kind: 'peer', meshDid: meshB.did }))
    assert.equal(refused?.details.reason, 'bad-shape')
    const ok = boundWrite(w.roomA, meshB, [entry([good])], 777_002)
    const applied = await w.roomA.applyUpdate(ok, { kind: 'peer', meshDid: meshB.did })
    assert.equal(refusalOf(applied), undefined)
    const view = w.roomA.page(undefined, 50).messages.find((m) => m.body === 'with files')
    assert.deepEqual(view?.attachments, [good])
  })

  it('Range: a-b, a-, -n; past the end unsatisfiable; other forms the whole file', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 })
    assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 })
    assert.deepEqual(parseRange('bytes=95-200', 100), { start: 95, end: 99 })
    assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 })
    assert.deepEqual(parseRange('bytes=-1000', 100), { start: 0, end: 99 })
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable')
    assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable')
    assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable')
    assert.equal(parseRange(undefined, 100), undefined)
    assert.equal(parseRange('bytes=0-1,5-6', 100), undefined)
    assert.equal(parseRange('items=0-1', 100), undefined)
    assert.equal(parseRange('bytes=9-1', 100), undefined)
  })
})
