import type { ConnectionView } from '../../../api/index.ts'

/**
 * Names instead of bare dids (issue 14) where a view carries only a did: a mesh's name
 * from what the console already holds — this mesh's own name, or the name a peer gave in
 * its handshake (its connection) — and a DM's name from its other members.
 */
export function meshNameOf(
  did: string | null | undefined,
  own: { did: string; name: string },
  connections: readonly Pick<ConnectionView, 'peerDid' | 'peerKeyDid' | 'peerName'>[],
): string | undefined {
  if (did === null || did === undefined) return undefined
  if (did === own.did) return own.name
  return (
    connections.find((c) => (c.peerDid === did || c.peerKeyDid === did) && c.peerName !== null)?.peerName ??
    undefined
  )
}

/**
 * What a DM is called here: the names (`@bob:beta`) of its members other than `me`, or its
 * stored name (`dm <did tail>@<mesh>`) while they are not known.
 */
export function dmName(
  room: { name: string },
  members: readonly { did: string; name: string; role?: string }[] | undefined,
  me: string,
): string {
  const others = (members ?? []).filter((m) => m.did !== me && m.role !== 'removed').map((m) => m.name)
  return others.length > 0 ? others.join(', ') : room.name
}
