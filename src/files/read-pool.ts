import type { FileHandle } from 'node:fs/promises'

/**
 * Buffers the file server reads a file into, reused from one read and one transfer to the
 * next (issue 18): a fresh 2 MiB buffer per read cost the serving process a third of its CPU
 * per transfer (its pages faulted in and zeroed, then collected), against a raw stream that
 * sends from memory. At most `keep` idle buffers are held.
 */
export class ReadPool {
  readonly bytes: number
  readonly #keep: number
  readonly #free: Buffer[] = []

  constructor(bytes: number, keep: number) {
    this.bytes = bytes
    this.#keep = keep
  }

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.bytes)
  }

  give(buf: Buffer): void {
    if (this.#free.length < this.#keep && buf.byteLength === this.bytes) this.#free.push(buf)
  }
}

/**
 * Sends bytes `[start, end)` of `file` through `send`, a pool buffer at a time, the next read
 * under way while one is sent. `send` resolves `true` only when the stream holds nothing of
 * what it was given so far (a libp2p stream whose `send()` returned true with an empty write
 * buffer: yamux handed every frame on and noise encrypted it, i.e. copied it); only then do
 * the buffers sent go back to the pool. A buffer the stream may still hold is left to the
 * garbage collector, never reused. A file shorter than `end` ends the transfer there (the
 * fetcher sees a cut).
 */
export async function sendFile(
  file: FileHandle,
  start: number,
  end: number,
  pool: ReadPool,
  send: (chunk: Uint8Array) => Promise<boolean>,
): Promise<void> {
  const readAt = async (at: number): Promise<{ buf: Buffer; n: number }> => {
    const buf = pool.take()
    try {
      const { bytesRead } = await file.read(buf, 0, Math.min(buf.byteLength, end - at), at)
      return { buf, n: bytesRead }
    } catch (err) {
      pool.give(buf)
      throw err
    }
  }
  const sent: Buffer[] = []
  let at = start
  let next = at < end ? readAt(at) : undefined
  try {
    while (next !== undefined) {
      const { buf, n } = await next
      next = undefined
      if (n === 0) {
        pool.give(buf)
        return
      }
      at += n
      if (at < end) next = readAt(at)
      sent.push(buf)
      if (await send(buf.subarray(0, n))) for (const done of sent.splice(0)) pool.give(done)
    }
  } finally {
    // A read under way when a send failed: its buffer never reached the stream.
    if (next !== undefined)
      await next.then(
        ({ buf }) => pool.give(buf),
        () => {},
      )
  }
}
