import { parseTarget } from '../identity/index.ts'
import { dialableAddresses, fetchManifest, isHttpTarget } from '../manifest/index.ts'
import type { PeerRecord } from './peers.ts'

/**
 * Where `mesh connect <target>` leads (SPEC §10): a did:key, a multiaddr ending in
 * `/p2p/<peer id>`, or an http(s) URL of a mesh (its base, or its manifest's URL),
 * whose manifest is fetched and verified (manifest/fetch-manifest.ts) for its did, its
 * name, its HTTP base and the libp2p addresses to dial.
 */
export interface ConnectTarget {
  did: string
  /** Addresses to dial first, each ending in the did's peer id. */
  multiaddrs: string[]
  /** From a manifest: the mesh's name and HTTP base. */
  name?: string
  http?: string
}

export async function resolveConnectTarget(
  target: string,
  options: { signal?: AbortSignal } = {},
): Promise<ConnectTarget> {
  if (!isHttpTarget(target)) {
    const parsed = parseTarget(target)
    return { did: parsed.did, multiaddrs: parsed.multiaddr !== undefined ? [parsed.multiaddr] : [] }
  }
  const { manifest } = await fetchManifest(target, options)
  return {
    did: manifest.did,
    multiaddrs: dialableAddresses(manifest),
    name: manifest.name,
    ...(typeof manifest.endpoints.http === 'string' ? { http: manifest.endpoints.http } : {}),
  }
}

/** `peer` with `target`'s addresses first (at most 16 kept), and its HTTP base and name when it had none. */
export function withTargetAddresses(peer: PeerRecord, target: ConnectTarget): PeerRecord {
  const multiaddrs = [...new Set([...target.multiaddrs, ...peer.multiaddrs])].slice(0, 16)
  return {
    ...peer,
    multiaddrs,
    ...(peer.http === undefined && target.http !== undefined ? { http: target.http } : {}),
  }
}
