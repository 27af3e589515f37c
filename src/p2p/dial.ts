import type { AbortOptions, Connection, Libp2p, PeerId, PeerStore, Stream } from '@libp2p/interface'
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

/**
 * Opens a stream for `protocols` to `peerId` on a connection the host already holds
 * when there is one, and dials otherwise (circuit churn, SPEC §10). libp2p's
 * `dialProtocol` never reuses a limited (relayed) connection, so without this every
 * request to a mesh reached only through a relay opened a new circuit. An open
 * unlimited connection is preferred (direct first), then an open limited one; a stream
 * that cannot be opened on it (the circuit was cut meanwhile) falls back to a dial,
 * which opens a new circuit. Every stream may run on a limited connection.
 */
export async function openStream(
  libp2p: Pick<Libp2p, 'getConnections' | 'dialProtocol'>,
  peerId: PeerId,
  protocols: string | string[],
  options: AbortOptions = {},
): Promise<Stream> {
  const opts = { ...options, runOnLimitedConnection: true }
  const connection = reusableConnection(libp2p.getConnections(peerId))
  if (connection !== undefined) {
    try {
      return await connection.newStream(protocols, opts)
    } catch (err) {
      // a refusal by the peer (protocol not spoken, aborted) is the answer; a closed
      // connection is not: dial again
      if (connection.status === 'open' || options.signal?.aborted === true) throw err
    }
  }
  return libp2p.dialProtocol(peerId, protocols, opts)
}

/** The open connection to reuse: unlimited before limited, direct before relayed. */
export function reusableConnection(connections: readonly Connection[]): Connection | undefined {
  const open = connections.filter((c) => c.status === 'open')
  const rank = (c: Connection) => (c.limits === undefined ? 0 : 2) + (c.direct ? 0 : 1)
  return open.sort((a, b) => rank(a) - rank(b))[0]
}
