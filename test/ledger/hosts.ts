import type { TestContext } from 'node:test'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { relayListenAddress } from '../../src/p2p/index.ts'
import { host, serveEcho } from '../p2p/relay-hosts.ts'

export { echo } from '../p2p/relay-hosts.ts'

// coordination fees (SPEC §10): a relay R, a hidden host H behind it and a peer P, real libp2p on loopback.

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
