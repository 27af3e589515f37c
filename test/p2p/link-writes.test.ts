import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server, Socket } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { corkPerTurn } from '../../src/p2p/coalesced-writes.ts'
import { halfWindowUpdates } from '../../src/p2p/lazy-window-updates.ts'
import { startHost } from './nodes.ts'

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** A connected socket pair on loopback: what the client writes lands in `received`. */
async function socketPair(t: TestContext): Promise<{ client: Socket; received: Buffer[]; server: Server }> {
  const received: Buffer[] = []
  const server = createServer((s) => s.on('data', (chunk: Buffer) => received.push(chunk)))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = new Socket()
  client.connect((server.address() as { port: number }).port, '127.0.0.1')
  await once(client, 'connect')
  t.after(() => {
    client.destroy()
    server.close()
  })
  return { client, received, server }
}

/** Counts the socket's writes to the kernel (one `_write` or `_writev` each). */
function countWrites(socket: Socket): { writes: number } {
  const counter = { writes: 0 }
  const s = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>
  for (const method of ['_write', '_writev'] as const) {
    const original = s[method].bind(socket)
    s[method] = (...args: unknown[]) => {
      counter.writes++
      return original(...args)
    }
  }
  return counter
}

describe('coalesced writes (issue 15: relay CPU)', () => {
  it("sends a turn's buffers in one socket write, in order; the next turn writes again", async (t) => {
    const { client, received } = await socketPair(t)
    // As @libp2p/tcp's connection sends: each buffer of a list on its own.
    const connection = {
      socket: client,
      sendData(data: Uint8Array[]) {
        let canSendMore = true
        for (const buf of data) canSendMore = client.write(buf)
        return { sentBytes: data.reduce((n, b) => n + b.byteLength, 0), canSendMore }
      },
    }
    const counter = countWrites(client)
    corkPerTurn(connection)
    const sent = [Buffer.from([0, 3]), Buffer.from('abc'), Buffer.from([0, 2]), Buffer.from('de')]
    assert.equal(connection.sendData(sent.slice(0, 2)).canSendMore, true)
    connection.sendData(sent.slice(2))
    assert.equal(counter.writes, 0, 'nothing is written before the turn ends')
    await turn()
    assert.equal(counter.writes, 1)
    connection.sendData([Buffer.from('f')])
    await turn()
    assert.equal(counter.writes, 2)
    const expected = Buffer.concat([...sent, Buffer.from('f')])
    await until(() => Buffer.concat(received).length >= expected.length)
    assert.deepEqual(Buffer.concat(received), expected)
    // A destroyed socket is not corked again; sending on it fails as it did.
    client.destroy()
    assert.doesNotThrow(() => connection.sendData([Buffer.from('g')]))
  })

  it('leaves a connection without a TCP socket as it is', () => {
    const sendData = () => ({ sentBytes: 0, canSendMore: true })
    const connection = { socket: {}, sendData }
    corkPerTurn(connection)
    assert.equal(connection.sendData, sendData)
  })

  it('between two hosts over TCP: one socket write per frame sent in a turn (Noise made two), every byte in order', async (t) => {
    const PROTOCOL = '/mesh/test/coalesced/1.0.0'
    const server = await startHost(t)
    const client = await startHost(t)
    const got: string[] = []
    await server.libp2p.handle(PROTOCOL, async (stream: Stream) => {
      const lp = lpStream(stream)
      for (;;) got.push(new TextDecoder().decode((await lp.read()).subarray()))
    })
    const addr = server.libp2p.getMultiaddrs().find((a) => a.toString().includes('/tcp/'))
    assert.ok(addr)
    const stream = await client.libp2p.dialProtocol(addr, PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(new TextEncoder().encode('hello'))
    await until(() => got.length === 1)
    const serverPort = Number(addr.toString().split('/tcp/')[1]?.split('/')[0])
    // The client's writes on this connection's socket, from here on.
    const proto = Socket.prototype as unknown as { _writeGeneric: (...args: unknown[]) => unknown }
    const original = proto._writeGeneric
    let writes = 0
    proto._writeGeneric = function (this: Socket, ...args: unknown[]) {
      if (this.remotePort === serverPort) writes++
      return original.apply(this, args)
    }
    t.after(() => {
      proto._writeGeneric = original
    })
    const frames = 40
    const sent: string[] = []
    for (let i = 0; i < frames; i++) {
      const body = `frame ${i} ${'x'.repeat(i * 37)}`
      sent.push(body)
      await lp.write(new TextEncoder().encode(body))
      await turn()
    }
    // Several frames in one turn, too.
    const burst = Array.from({ length: 10 }, (_, i) => `burst ${i}`)
    await Promise.all(burst.map((b) => lp.write(new TextEncoder().encode(b))))
    await until(() => got.length === 1 + frames + burst.length)
    proto._writeGeneric = original
    assert.deepEqual(got.slice(1), [...sent, ...burst])
    // A frame is one Noise message: its length and its ciphertext were two writes.
    assert.ok(
      writes <= frames + burst.length + 4,
      `${writes} socket writes for ${frames + burst.length} frames`,
    )
  })
})

async function until(check: () => boolean): Promise<void> {
  while (!check()) await turn()
}

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
    assert.ok(writes <= 4, `${writes} writes from the receiver for ${frames} small frames`)
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
