import assert from 'node:assert/strict'
import { Socket } from 'node:net'
import { describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { halfWindowUpdates } from '../../src/p2p/lazy-window-updates.ts'
import { startHost } from './nodes.ts'

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('lazy window updates (issue 15: relay CPU)', () => {
  it('skips an update while more than half the window is free; sends it once half is used, and always before the stream is established', () => {
    const sent: number[] = []
    const stream = {
      state: 3,
      recvWindow: 256 * 1024,
      recvWindowCapacity: 256 * 1024,
      sendWindowUpdate() {
        sent.push(this.recvWindow - this.recvWindowCapacity)
        this.recvWindowCapacity = this.recvWindow
      },
    }
    halfWindowUpdates(stream)
    stream.recvWindowCapacity -= 1000
    stream.sendWindowUpdate()
    assert.deepEqual(sent, [])
    stream.recvWindowCapacity = 128 * 1024
    stream.sendWindowUpdate()
    assert.deepEqual(sent, [128 * 1024])
    // Not established (its SYN/ACK still owed, or paused): yamux decides, as before.
    stream.state = 2
    stream.recvWindowCapacity -= 10
    stream.sendWindowUpdate()
    assert.deepEqual(sent, [128 * 1024, 10])
  })

  it('between two hosts: the receiver no longer answers each frame; a transfer far beyond the window still completes, in order', async (t) => {
    const PROTOCOL = '/mesh/test/window/1.0.0'
    const server = await startHost(t)
    const client = await startHost(t)
    const got: Uint8Array[] = []
    await server.libp2p.handle(PROTOCOL, async (stream: Stream) => {
      const lp = lpStream(stream, { maxDataLength: 1024 * 1024 })
      for (;;) got.push((await lp.read()).subarray())
    })
    const addr = server.libp2p.getMultiaddrs().find((a) => a.toString().includes('/tcp/'))
    assert.ok(addr)
    const serverPort = Number(addr.toString().split('/tcp/')[1]?.split('/')[0])
    const stream = await client.libp2p.dialProtocol(addr, PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: 1024 * 1024 })
    await lp.write(new Uint8Array(1))
    await until(() => got.length === 1)
    // The server's writes on this connection's socket, from here on.
    const proto = Socket.prototype as unknown as { _writeGeneric: (...args: unknown[]) => unknown }
    const original = proto._writeGeneric
    let writes = 0
    proto._writeGeneric = function (this: Socket, ...args: unknown[]) {
      if (this.localPort === serverPort) writes++
      return original.apply(this, args)
    }
    t.after(() => {
      proto._writeGeneric = original
    })
    const frames = 40
    for (let i = 0; i < frames; i++) {
      await lp.write(new Uint8Array(700).fill(i))
      await turn()
    }
    await until(() => got.length === 1 + frames)
    proto._writeGeneric = original
    assert.ok(writes < frames / 2, `${writes} writes from the receiver for ${frames} small frames`)
    // 8 MiB in 64 KiB frames: 32 times the first window, so updates must keep flowing.
    const big = Array.from({ length: 128 }, (_, i) => new Uint8Array(64 * 1024).fill(i))
    for (const b of big) await lp.write(b)
    await until(() => got.length === 1 + frames + big.length)
    got.slice(1 + frames).forEach((g, i) => {
      assert.equal(g.byteLength, 64 * 1024)
      assert.equal(g[0], i)
      assert.equal(g.at(-1), i)
    })
  })
})

async function until(check: () => boolean): Promise<void> {
  while (!check()) await turn()
}
