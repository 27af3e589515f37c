import { ForeignAccess } from '../rooms/index.ts'
import type { NodeWiring } from './parts.ts'
import type { ReputationFeed } from './reputation.ts'

/**
 * Agents in foreign rooms under a chain (SPEC §8, way 2): `room/read` / `room/post`
 * through `POST /api/invoke`, and capability sessions (`POST /api/session/ucan`).
 */
export function startForeignAccess(wiring: NodeWiring & { reputation: ReputationFeed }): ForeignAccess {
  const { parts } = wiring
  const access = new ForeignAccess({
    rooms: parts.get('rooms'),
    store: parts.get('store'),
    authority: () => parts.get('authority'),
    audit: parts.get('audit'),
    onInteraction: wiring.reputation.local,
  })
  access.start()
  parts.onStop(() => access.stop())
  return parts.set('foreignAccess', access)
}
