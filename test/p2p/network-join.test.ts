import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import type { BootstrapSource, BootstrapTargetsOptions } from '../../src/p2p/index.ts'
import { NetworkJoin } from '../../src/p2p/network-join.ts'
import { captureLogger, startHost, startMesh, waitFor } from './nodes.ts'

/** A port nothing listens on: dials to it are refused at once. */
const DEAD_PORT = 1

function deadMesh(): Multiaddr[] {
  return [multiaddr(`/ip4/127.0.0.1/tcp/${DEAD_PORT}/p2p/${Ed25519KeyPair.generate().peerId().toString()}`)]
}

/** The injected source: answers `targets()` from a list, and records who asked. */
function stubSource(targets: () => Multiaddr[][]): BootstrapSource & { asked: BootstrapTargetsOptions[] } {
  const asked: BootstrapTargetsOptions[] = []
  return {
    asked,
    async targets(options) {
      asked.push(options)
      return targets()
    },
  }
}

describe('joining through an injected bootstrap source', () => {
  it('discovery asks the source when alone, dials what it lists and finds the mesh there', async (t) => {
    const a = await startMesh(t, { name: 'alpha' })
    const source = stubSource(() => [deadMesh(), a.libp2p.getMultiaddrs()])
    const c = await startMesh(t, { name: 'charlie', registry: source })
    await waitFor(async () => (await c.discovery.list()).find((m) => m.did === a.key.did), 'C to list A')
    assert.ok(source.asked.length >= 1)
    assert.equal(source.asked[0]?.self, c.key.did, 'the source is told whom to leave out')
    assert.ok(source.asked[0]?.signal instanceof AbortSignal, 'the round can cut the source short')
  })

  it('stops dialling once maxSourceDials answered, passing over dead entries', async (t) => {
    const live = [await startHost(t), await startHost(t), await startHost(t)]
    const asker = await startHost(t)
    const { logger, lines } = captureLogger()
    const source = stubSource(() => [deadMesh(), deadMesh(), ...live.map((h) => h.libp2p.getMultiaddrs())])
    const join = new NetworkJoin(
      { libp2p: asker.libp2p, logger, source },
      { self: asker.key.did, bootstrap: [], maxSourceDials: 1, dialTimeoutMs: 5_000 },
    )
    await join.join()
    const joined = lines.find((l) => l.event === 'discovery.registry_joined')
    assert.equal(joined?.listed, 5)
    assert.equal(joined?.connected, 1)
    assert.equal(joined?.tried, 3, 'two dead entries, then the first live one')
    assert.equal(lines.filter((l) => l.event === 'discovery.dial_failed').length, 2)
    const reached = live.filter((h) => asker.libp2p.getConnections(h.libp2p.peerId).length > 0)
    assert.equal(reached.length, 1)
  })

  it('without a source, dials the bootstrap peers and logs no registry join', async (t) => {
    const a = await startHost(t)
    const asker = await startHost(t)
    const { logger, lines } = captureLogger()
    const join = new NetworkJoin(
      { libp2p: asker.libp2p, logger },
      {
        self: asker.key.did,
        bootstrap: [String(a.libp2p.getMultiaddrs()[0]), 'not a multiaddr'],
        maxSourceDials: 16,
        dialTimeoutMs: 5_000,
      },
    )
    await join.join()
    assert.ok(asker.libp2p.getConnections(a.libp2p.peerId).length > 0)
    assert.ok(lines.some((l) => l.event === 'discovery.bootstrap_invalid' && l.addr === 'not a multiaddr'))
    assert.ok(!lines.some((l) => l.event === 'discovery.registry_joined'))
  })
})
