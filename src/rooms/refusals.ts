import { MeshError, type MeshErrorCode } from '../errors.ts'
import type { Link } from './link.ts'
import type { RoomManager } from './room-manager.ts'

const MAX_THROTTLED_KEYS = 10_000

/**
 * At most one record per key per interval; the ones in between are counted and the
 * count goes with the next record. (The connections keep a copy of this throttle;
 * issue 11 gives both one home.)
 */
export class RefusalThrottle {
  readonly #last = new Map<string, { at: number; suppressed: number }>()
  readonly #intervalMs: number
  readonly #now: () => number

  constructor(init: { intervalMs: number; now: () => number }) {
    this.#intervalMs = init.intervalMs
    this.#now = init.now
  }

  /**
   * `undefined` when `key` was recorded less than an interval ago (counted as
   * suppressed); otherwise how many were suppressed since its last record.
   */
  admit(key: string): number | undefined {
    const now = this.#now()
    const last = this.#last.get(key)
    if (last !== undefined && now - last.at < this.#intervalMs) {
      last.suppressed++
      return undefined
    }
    if (this.#last.size > MAX_THROTTLED_KEYS) this.#last.clear()
    this.#last.set(key, { at: now, suppressed: 0 })
    return last?.suppressed ?? 0
  }
}

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
    const suppressed = c.throttle.admit(`${peer} ${reason}`)
    if (suppressed === undefined) return
    const details: Record<string, unknown> = { reason, peer }
    if (suppressed > 0) details.suppressedSinceLast = suppressed
    c.rooms.recordRefusal(
      room ?? '-',
      { kind: 'peer', meshDid: peer },
      new MeshError(code, message, details),
      'room.sync',
    )
    if (link !== undefined && room !== null) link.send({ room, type: 'refused', code, reason })
  }
}
