import type { AbortOptions, PeerId, Stream } from '@libp2p/interface'
import { addDialAddresses, type MeshLibp2p, openStream } from '../p2p/index.ts'

/**
 * The dial step of a link: when the host holds no connection to the peer, the
 * addresses its connection record names are added to the peer store first, then the
 * protocol is dialled, the same step the connections take (`addDialAddresses`).
 */
export async function dialPeerProtocol(
  libp2p: MeshLibp2p,
  peerId: PeerId,
  multiaddrs: string[],
  protocols: readonly string[],
  options: AbortOptions = {},
): Promise<Stream> {
  if (libp2p.getConnections(peerId).length === 0) await addDialAddresses(libp2p.peerStore, peerId, multiaddrs)
  // reachability (SPEC §10): a peer reached through a relay is on a limited connection,
  // reused while it is open (circuit churn)
  return openStream(libp2p, peerId, [...protocols], options)
}
