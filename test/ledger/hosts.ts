import type { TestContext } from 'node:test'
import type { Connection, Stream } from '@libp2p/interface'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  createMeshLibp2p,
  type MeshLibp2p,
  type MeshLibp2pInit,
  relayListenAddress,
} from '../../src/p2p/index.ts'

// coordination fees (SPEC §10): a relay R, a hidden host H behind it and a peer P, real libp2p on loopback.

export const ECHO = '/mesh-test/echo/1.0.0'

export async function host(t: TestContext, init: Partial<MeshLibp2pInit> = {}): Promise<MeshLibp2p> {
  const libp2p = await createMeshLibp2p({ key: Ed25519KeyPair.generate(), ...init })
  t.after(() => libp2p.stop())
  return libp2p
}

export async function serveEcho(libp2p: MeshLibp2p): Promise<void> {
  await libp2p.handle(
    ECHO,
    async (stream: Stream) => {
      for await (const chunk of stream) stream.send(chunk.subarray())
      await stream.close()
    },
    { runOnLimitedConnection: true },
  )
}

/** Sends `bytes` bytes over ECHO and reads them back; returns the bytes read. */
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

/** A relay R, a hidden host H (its reservation on R only), and a peer P on TCP. */
export async function triangle(t: TestContext) {
  const keys = { r: Ed25519KeyPair.generate(), h: Ed25519KeyPair.generate(), p: Ed25519KeyPair.generate() }
  const r = await host(t, { key: keys.r, relay: true })
  const relayAddr = r.getMultiaddrs()[0]?.toString() as string
  const h = await host(t, { key: keys.h, listen: [relayListenAddress(relayAddr)] })
  const p = await host(t, { key: keys.p })
  await serveEcho(h)
  return { r, h, p, relayAddr, keys }
}

export function within(actual: number, expected: number, share: number): boolean {
  return Math.abs(actual - expected) <= expected * share
}
