/**
 * The cold-start peer: a bare js-libp2p node with the same transports as a mesh (TCP,
 * WebSockets and circuit relay v2, listening on TCP on loopback), Noise, Yamux, identify,
 * ping and kad-dht in server mode, and nothing else — no store, no key file, no HTTP. Prints `ready peer=… listen=…` once
 * started; stops on SIGTERM/SIGINT.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  // the mesh's transports (src/p2p/host.ts); before issue 15's second pass the peer had TCP only
  transports: [tcp(), webSockets(), circuitRelayTransport()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({ protocol: '/mesh/kad/1.0.0', clientMode: false, peerInfoMapper: passthroughMapper }),
  },
})
process.stdout.write(`ready peer=${node.peerId} listen=${node.getMultiaddrs().join(',')}\n`)

const stop = async (): Promise<void> => {
  await node.stop()
  process.exit(0)
}
process.on('SIGTERM', () => void stop())
process.on('SIGINT', () => void stop())
