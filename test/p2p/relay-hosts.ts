import type { TestContext } from 'node:test'
import type { Connection, Stream } from '@libp2p/interface'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { createMeshLibp2p, type MeshLibp2p, type MeshLibp2pInit } from '../../src/p2p/index.ts'

// Real libp2p hosts on loopback for the relay tests (reachability and coordination fees, SPEC §10).

export const ECHO = '/mesh-test/echo/1.0.0'

export async function host(t: TestContext, init: Partial<MeshLibp2pInit> = {}): Promise<MeshLibp2p> {
  const libp2p = await createMeshLibp2p({ key: Ed25519KeyPair.generate(), ...init })
  t.after(() => libp2p.stop())
  return libp2p
}

/** Handles ECHO on `libp2p`: every chunk is written back. */
export async function serveEcho(libp2p: MeshLibp2p, runOnLimitedConnection = true): Promise<void> {
  await libp2p.handle(
    ECHO,
    async (stream: Stream) => {
      for await (const chunk of stream) stream.send(chunk.subarray())
      await stream.close()
    },
    { runOnLimitedConnection },
  )
}

/** Sends `bytes` bytes in 16 KiB chunks over ECHO and reads them back; returns the bytes read. */
export async function echo(connection: Connection, bytes: number): Promise<number> {
  const stream = await connection.newStream(ECHO, { runOnLimitedConnection: true })
  let read = 0
  const reading = (async () => {
    for await (const chunk of stream) {
      read += chunk.byteLength
      if (read >= bytes) break
    }
  })()
  for (let sent = 0; sent < bytes; sent += 16 * 1024) {
    if (!stream.send(new Uint8Array(Math.min(16 * 1024, bytes - sent)).fill(7))) await stream.onDrain()
  }
  await reading
  await stream.close().catch(() => {})
  return read
}
