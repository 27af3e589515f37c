import type { NodeWiring } from './parts.ts'

/**
 * What a person calls an identity, so that no view shows a bare did where a name is
 * known (issue 14): this mesh (its name), its own principals (`@localId`), peer meshes
 * (the name they gave in the handshake), and foreign principals met in a room
 * (`@localId:mesh`, as the room shows them). Undefined when nothing here knows the did.
 */
export interface NameResolver {
  nameOf(did: string): Promise<string | undefined>
  /** Names of many dids at once (one look at the connections for all of them). */
  namesOf(dids: Iterable<string>): Promise<Map<string, string>>
}

export function startNames({ parts }: NodeWiring): NameResolver {
  const resolver: NameResolver = {
    async nameOf(did) {
      return (await resolver.namesOf([did])).get(did)
    },
    async namesOf(dids) {
      const wanted = new Set(dids)
      const names = new Map<string, string>()
      if (wanted.size === 0) return names
      const history = parts.get('history')
      const own = parts.get('info').name
      for (const key of [history.identity, ...history.keys]) if (wanted.has(key)) names.set(key, own)
      const members = parts.get('members')
      for (const did of wanted) {
        if (names.has(did)) continue
        const principal = await members.localPrincipal(did)
        if (principal !== undefined) names.set(did, `@${principal.localId}`)
      }
      const open = () => [...wanted].filter((did) => !names.has(did))
      if (open().length > 0) {
        for (const c of await parts.get('connections').list()) {
          if (c.peerName === null) continue
          for (const did of [c.peerDid, c.peerKeyDid])
            if (wanted.has(did) && !names.has(did)) names.set(did, c.peerName)
        }
      }
      if (open().length > 0) {
        for (const room of parts.get('rooms').loaded()) {
          for (const did of open()) {
            const m = room.member(did)
            if (m !== undefined && m.role !== 'removed') names.set(did, `@${m.localId}:${m.meshName}`)
          }
        }
      }
      return names
    },
  }
  return parts.set('names', resolver)
}
