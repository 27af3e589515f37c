import type { Connection, DialTarget, PeerId, PeerStore } from '@libp2p/interface'
import type { ConnectionManager, OpenConnectionOptions } from '@libp2p/interface-internal'
import { peerIdFromString } from '@libp2p/peer-id'
import { isMultiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { reusableConnection } from './dial.ts'
import { isRelayAddress } from './reachability.ts'

/**
 * Circuit churn (SPEC §10): libp2p's connection manager never hands out an open *limited*
 * (relayed) connection to a dial — its `findExistingConnection` skips them — so every dial
 * of a peer reached only through a relay opens a new circuit. Not only ours: the DHT's
 * queries (the random walk of relay discovery and AutoNAT runs one every few hundred ms)
 * dial every peer they meet, and a hidden mesh's only addresses are relay addresses: a
 * circuit each time, hundreds a minute between two hidden meshes.
 *
 * This wraps the host's `connectionManager.openConnection` (which `dial`, `dialProtocol`
 * and every service go through): when the peer has no open unlimited connection but an
 * open limited one, and the dial could only open another circuit (the target is the peer
 * and the peer store knows no direct address of it, or the target is relay addresses
 * only), the limited connection is returned. A protocol that may not run on it then
 * fails at once, as it would have on a new circuit. `force: true` (DCUtR's upgrade) dials.
 */
export function reuseLimitedConnections(components: {
  connectionManager: ConnectionManager
  peerStore: Pick<PeerStore, 'get'>
}): void {
  const { connectionManager: manager, peerStore } = components
  const open = manager.openConnection.bind(manager)
  manager.openConnection = async (
    target: DialTarget,
    options: OpenConnectionOptions = {},
  ): Promise<Connection> => {
    if (options.force !== true) {
      const peer = targetPeer(target)
      const existing = peer === undefined ? undefined : reusableConnection(manager.getConnections(peer))
      if (
        existing !== undefined &&
        existing.limits !== undefined &&
        (await onlyRelayed(target, peer, peerStore))
      )
        return existing
    }
    return open(target, options)
  }
}

function targetPeer(target: DialTarget): PeerId | undefined {
  if (!isMultiaddr(target) && !Array.isArray(target)) return target as PeerId
  const list: Multiaddr[] = Array.isArray(target) ? target : [target]
  const id = list[0]?.getComponents().findLast((c) => c.name === 'p2p')?.value
  try {
    return id === undefined ? undefined : peerIdFromString(id)
  } catch {
    return undefined
  }
}

/** Whether dialling `target` could only go through a relay. */
async function onlyRelayed(
  target: DialTarget,
  peer: PeerId | undefined,
  peerStore: Pick<PeerStore, 'get'>,
): Promise<boolean> {
  if (isMultiaddr(target) || Array.isArray(target)) {
    const list: Multiaddr[] = Array.isArray(target) ? target : [target]
    return list.every((ma) => isRelayAddress(ma.toString()))
  }
  if (peer === undefined) return false
  try {
    return (await peerStore.get(peer)).addresses.every((a) => isRelayAddress(a.multiaddr.toString()))
  } catch {
    return true // nothing known: only the open connection reaches it
  }
}
