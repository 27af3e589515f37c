import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ReadPool, sendFile } from '../../src/files/read-pool.ts'
import { tempDir } from '../fixtures/principals.ts'

/** A file of `bytes` and a handle on it, closed when the test ends. */
async function fileOf(t: Parameters<typeof tempDir>[0], bytes: Buffer) {
  const path = join(await tempDir(t), 'blob')
  await writeFile(path, bytes)
  const file = await open(path, 'r')
  t.after(() => file.close())
  return file
}

/**
 * A stream's sends: a chunk the stream "took" (send resolves true) is copied, with every
 * chunk before it, as yamux + noise do; the others are kept as the views they were sent as.
 */
function recorder(taken: (i: number) => boolean) {
  const copied: Buffer[] = []
  const held: Uint8Array[] = []
  const buffers = new Set<ArrayBufferLike>()
  let sends = 0
  return {
    buffers,
    sends: () => sends,
    /** What went out: the copies, then the held views as they are now. */
    carried: () => Buffer.concat([...copied, ...held]),
    send: async (chunk: Uint8Array) => {
      held.push(chunk)
      buffers.add(chunk.buffer)
      if (!taken(sends++)) return false
      for (const view of held.splice(0)) copied.push(Buffer.from(view))
      return true
    },
  }
}

describe('the file server reads into reused buffers (issue 18)', () => {
  it('sends the range in order; buffers the stream took all of are read into again', async (t) => {
    const bytes = randomBytes(40_000)
    const file = await fileOf(t, bytes)
    const pool = new ReadPool(4096, 4)
    const sent = recorder(() => true)
    await sendFile(file, 1000, 39_001, pool, sent.send)
    assert.ok(sent.carried().equals(bytes.subarray(1000, 39_001)), 'the bytes sent are the file’s')
    assert.ok(sent.sends() >= 10)
    // One buffer sent, one read ahead, at most one more: not one per read.
    assert.ok(sent.buffers.size <= 3, `${sent.buffers.size} buffers for ${sent.sends()} reads`)
  })

  it('never reads into a buffer the stream may still hold (send not taken)', async (t) => {
    const bytes = randomBytes(40_000)
    const file = await fileOf(t, bytes)
    const pool = new ReadPool(4096, 4)
    // Every third send leaves bytes in the stream's buffers; the ones before it too, until a later send is taken.
    // A buffer read into again while the stream held it would show other bytes than were sent.
    const some = recorder((i) => i % 3 === 2)
    await sendFile(file, 0, bytes.length, pool, some.send)
    assert.ok(some.carried().equals(bytes), 'the bytes sent are the file’s')
    const never = recorder(() => false)
    await sendFile(file, 0, bytes.length, pool, never.send)
    assert.ok(never.carried().equals(bytes), 'the bytes sent are the file’s')
    assert.equal(never.buffers.size, never.sends())
  })

  it('a file shorter than the range ends the transfer where it ends; a failed send gives back the read under way', async (t) => {
    const bytes = randomBytes(10_000)
    const file = await fileOf(t, bytes)
    const pool = new ReadPool(4096, 4)
    const short = recorder(() => true)
    await sendFile(file, 0, 20_000, pool, short.send)
    assert.ok(short.carried().equals(bytes), 'the bytes sent are the file’s')
    let sends = 0
    await assert.rejects(
      sendFile(file, 0, bytes.length, pool, async () => {
        if (++sends === 2) throw new Error('stream reset')
        return true
      }),
      /stream reset/,
    )
  })
})
