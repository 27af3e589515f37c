import type { AbortOptions, PeerId, Stream } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { MeshLibp2p } from '../p2p/index.ts'

/**
 * The dial step of a link: when the host holds no connection to the peer, the
 * addresses its connection record names are added to the peer store first, then the
 * protocol is dialled. (The connections dial the same way; issue 11 gives both one
 * dial helper.)
 */
export async function dialPeerProtocol(
  libp2p: MeshLibp2p,
  peerId: PeerId,
  multiaddrs: string[],
  protocols: readonly string[],
  options: AbortOptions = {},
): Promise<Stream> {
  if (libp2p.getConnections(peerId).length === 0) {
    const addrs = addressesOf(multiaddrs)
    if (addrs.length > 0) await libp2p.peerStore.merge(peerId, { multiaddrs: addrs })
  }
  return libp2p.dialProtocol(peerId, [...protocols], options)
}

/** Parsable addresses, without their `/p2p/…` suffix; the rest are skipped. */
function addressesOf(list: string[]): Multiaddr[] {
  const out: Multiaddr[] = []
  for (const a of list) {
    try {
      const ma = multiaddr(a)
      out.push(ma.getComponents().some((c) => c.name === 'p2p') ? ma.decapsulateCode(421) : ma)
    } catch {
      // skipped
    }
  }
  return out
}
