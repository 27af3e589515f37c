import type { PeerId, PeerStore } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'

/** The multiaddr protocol code of `/p2p/<peer id>`. */
const P2P_CODE = 421

/**
 * The addresses a peer told us, as libp2p's peer store files them: parsed, without
 * their `/p2p/` part. An address that does not parse is skipped: a peer's bad address
 * must not break a dial to its good ones.
 */
export function dialAddresses(list: Iterable<string>): Multiaddr[] {
  const out: Multiaddr[] = []
  for (const a of list) {
    try {
      const ma = multiaddr(a)
      out.push(ma.getComponents().some((c) => c.name === 'p2p') ? ma.decapsulateCode(P2P_CODE) : ma)
    } catch {
      // skipped
    }
  }
  return out
}

/**
 * Files `addresses` for `peerId` in the peer store so that the next dial can use them
 * (the step before every dial of a peer mesh). Returns whether the store now knows any
 * address of the peer; false means a dial has nowhere to go.
 */
export async function addDialAddresses(
  peerStore: Pick<PeerStore, 'merge' | 'get'>,
  peerId: PeerId,
  addresses: Iterable<string>,
): Promise<boolean> {
  const multiaddrs = dialAddresses(addresses)
  if (multiaddrs.length > 0) {
    await peerStore.merge(peerId, { multiaddrs })
    return true
  }
  try {
    return (await peerStore.get(peerId)).addresses.length > 0
  } catch {
    return false
  }
}
