import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { BlobStore, cidOf, fetchFromPeer } from '../../src/files/index.ts'
import { tempDir } from '../fixtures/principals.ts'
import { waitFor } from '../p2p/nodes.ts'
import { honestPeer, pair, store } from './peers.ts'

const ROOM = 'room-0000001'

/** A store whose disk is slow: every write waits, and its buffer is small (the fetch must pause). */
class SlowStore extends BlobStore {
  override async resume(cid: string) {
    const real = await super.resume(cid)
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk, _enc, done) {
        setTimeout(() => (real.out.write(chunk) ? done() : real.out.once('drain', done)), 2)
      },
      final(done) {
        real.out.end(done)
      },
    })
    return { ...real, out: slow as unknown as typeof real.out }
  }
}

/** What a hostile server answers: `frames` as they are, then the stream closes. */
function hostile(frames: Uint8Array[]) {
  return async (stream: Stream) => {
    for await (const _ of stream) break // the request
    for (const f of frames) stream.send(f)
    await stream.close()
  }
}
const header = (v: unknown) => {
  const json = Buffer.from(JSON.stringify(v))
  return Buffer.concat([Buffer.from([json.length]), json])
}

describe('fetchFromPeer against honest and hostile servers (issue 18)', () => {
  it('pauses for a slow disk and still gets every byte, hash checked', async (t) => {
    const bytes = randomBytes(6 * 1024 * 1024 + 5)
    const { dial, cids } = await honestPeer(t, [bytes])
    const cid = cids[0] as string
    const into = new SlowStore({ dir: join(await tempDir(t), 'slow') })
    await into.start()
    const { stored, ...got } = await fetchFromPeer(
      { store: into, dial },
      'x',
      { room: ROOM, cid },
      AbortSignal.timeout(120_000),
    )
    assert.deepEqual(got, { size: bytes.length, resumedAt: 0 })
    await stored
    assert.equal(await into.size(cid), bytes.length)
  })

  it('refuses more bytes than the size, a lying size, a cut, an unknown code, an oversized file; keeps a cut partial', async (t) => {
    const bytes = randomBytes(1000)
    const cid = cidOf(bytes)
    const into = await store(t, 'into', { maxFileBytes: 5000 })
    const fetch = async (frames: Uint8Array[]) => {
      const { dial } = await pair(t, hostile(frames))
      const { stored, ...got } = await fetchFromPeer(
        { store: into, dial },
        'evil',
        { room: ROOM, cid },
        AbortSignal.timeout(30_000),
      )
      await stored
      return got
    }
    await assert.rejects(fetch([header({ ok: { size: 1000 } }), randomBytes(1500)]), {
      code: 'MESH_UNAVAILABLE',
    })
    await into.discardPartial(cid)
    await assert.rejects(fetch([header({ ok: { size: 6000 } })]), { code: 'MESH_TOO_LARGE' })
    assert.equal(await into.partialSize(cid), 0)
    await assert.rejects(fetch([header({ ok: { size: -1 } })]), { code: 'MESH_UNAVAILABLE' })
    await assert.rejects(fetch([header({ error: { code: 'EVIL', message: 'x' } })]), {
      code: 'MESH_FORBIDDEN',
    })
    await assert.rejects(fetch([Buffer.from([0xff, 0xff, 0xff, 0x01])]), { code: 'MESH_UNAVAILABLE' })
    // A cut after 400 bytes keeps them; the next fetch resumes there and checks the whole.
    await assert.rejects(fetch([header({ ok: { size: 1000 } }), bytes.subarray(0, 400)]), {
      code: 'MESH_UNAVAILABLE',
    })
    assert.equal(await into.partialSize(cid), 400)
    const resumed = await fetch([header({ ok: { size: 1000 } }), bytes.subarray(400)])
    assert.deepEqual(resumed, { size: 1000, resumedAt: 400 })
    assert.equal(await into.size(cid), 1000)
    // The header cut anywhere, the file's bytes in the same frames as its end: read whole.
    await into.discardPartial(cid)
    const whole = Buffer.concat([header({ ok: { size: 1000 } }), bytes])
    const split = await fetch([
      whole.subarray(0, 1),
      whole.subarray(1, 9),
      whole.subarray(9, 500),
      whole.subarray(500),
    ])
    assert.deepEqual(split, { size: 1000, resumedAt: 0 })
    // Other bytes under the CID: refused, nothing kept.
    const other = randomBytes(1000)
    const cid2 = cidOf(randomBytes(1000))
    const { dial } = await pair(t, hostile([header({ ok: { size: 1000 } }), other]))
    await assert.rejects(
      fetchFromPeer({ store: into, dial }, 'evil', { room: ROOM, cid: cid2 }, AbortSignal.timeout(30_000)),
      { code: 'MESH_SIGNATURE_MISMATCH' },
    )
    assert.equal(await into.size(cid2), undefined)
    assert.equal(await into.partialSize(cid2), 0)
  })

  it('a dial that fails (the partial opened meanwhile) leaves a partial as it was; a partial that cannot open aborts the stream', async (t) => {
    const into = await store(t, 'dial-fails')
    const bytes = randomBytes(1000)
    const cid = cidOf(bytes)
    const refused = async () => {
      throw new Error('no route to the peer')
    }
    await assert.rejects(
      fetchFromPeer({ store: into, dial: refused }, 'x', { room: ROOM, cid }, AbortSignal.timeout(5000)),
      /no route/,
    )
    // No empty partial made by the failed try.
    assert.deepEqual(await readdir(join(into.dir, '.partial')), [])
    // Bytes held from a cut transfer stay as they were.
    await writeFile(into.partialPath(cid), bytes.subarray(0, 300))
    await assert.rejects(
      fetchFromPeer({ store: into, dial: refused }, 'x', { room: ROOM, cid }, AbortSignal.timeout(5000)),
      /no route/,
    )
    assert.equal(await into.partialSize(cid), 300)
    // The partial cannot be read: the stream opened for the request is aborted, nothing sent.
    let served: Stream | undefined
    let requested = false
    const { dial } = await pair(t, async (stream) => {
      served = stream
      try {
        for await (const _ of stream) requested = true
      } catch {
        // reset by the fetcher
      }
    })
    await rm(into.partialPath(cid))
    await mkdir(into.partialPath(cid))
    await assert.rejects(
      fetchFromPeer({ store: into, dial }, 'x', { room: ROOM, cid }, AbortSignal.timeout(5000)),
      { code: 'EISDIR' },
    )
    await waitFor(() => served !== undefined && served.status !== 'open', 'the stream aborted')
    assert.equal(requested, false)
  })
})
