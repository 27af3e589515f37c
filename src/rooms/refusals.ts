import type { RefusalThrottle } from '../audit/index.ts'
import { MeshError, type MeshErrorCode } from '../errors.ts'
import type { Link } from './link.ts'
import type { RoomManager } from './room-manager.ts'

export interface RefusalsComponents {
  rooms: Pick<RoomManager, 'recordRefusal'>
  stats: { refused: number }
  throttle: RefusalThrottle
}

/** What a peer sent and this mesh dropped. */
export type Refuse = (
  peer: string,
  room: string | null,
  code: MeshErrorCode,
  reason: string,
  message: string,
  link?: Link,
) => void

/**
 * Records a refused frame in the rejected log (through the room manager, so that
 * `onRejected` hears of it) and tells the peer; at most one per peer and reason per
 * interval, the rest counted in the next record.
 */
export function refusals(c: RefusalsComponents): Refuse {
  return (peer, room, code, reason, message, link) => {
    c.stats.refused++
    const admitted = c.throttle.admit(`${peer} ${reason}`)
    if (admitted === undefined) return
    const details: Record<string, unknown> = { reason, peer }
    if (admitted.suppressedSinceLast > 0) details.suppressedSinceLast = admitted.suppressedSinceLast
    c.rooms.recordRefusal(
      room ?? '-',
      { kind: 'peer', meshDid: peer },
      new MeshError(code, message, details),
      'room.sync',
    )
    if (link !== undefined && room !== null) link.send({ room, type: 'refused', code, reason })
  }
}
