import type { Room, RoomOrigin, RoomRejection } from '../rooms/index.ts'

type Outcome = 'accepted' | 'refused'

/** The part of the interaction reporter the wiring feeds (InteractionReporter). */
export interface InteractionSink {
  accepted(did: string, reason: string, options?: { scope?: 'principal' | 'mesh'; mesh?: string }): void
  refused(did: string, reason: string, options?: { scope?: 'principal' | 'mesh'; mesh?: string }): void
}

export interface ReputationFeedComponents {
  /** The reporter running now; none before start and after stop, when nothing is counted. */
  interactions: () => InteractionSink | undefined
}

/** The rooms the feed watches: those loaded now and each one loaded later. */
export interface WatchedRooms {
  loaded(): Room[]
  onLoad(listener: (room: Room) => void): unknown
}

/**
 * Reputation from what the node's services see: outcomes of peer messages
 * (connections), of local invocations (agents), and of room updates — refused ones at
 * once, accepted peer updates as they land (the reporter coalesces them).
 */
export class ReputationFeed {
  readonly #interactions: () => InteractionSink | undefined

  constructor(components: ReputationFeedComponents) {
    this.#interactions = components.interactions
  }

  /** A peer mesh's message: the human behind an act is counted with its mesh; a message without one, the mesh alone. */
  peer = (event: { mesh: string; principal?: string; outcome: Outcome; reason: string }): void => {
    const { mesh, principal } = event
    if (principal !== undefined) this.#report(event.outcome, principal, event.reason, { mesh })
    else this.#report(event.outcome, mesh, event.reason, { scope: 'mesh' })
  }

  /** A local principal's invocation. */
  local = (did: string, outcome: Outcome, reason: string): void => {
    this.#report(outcome, did, reason)
  }

  /** A refused room update, counted against its sender. */
  roomRefused = (event: RoomRejection): void => {
    const reason = `room.update ${String(event.error.details.reason ?? event.error.code)}`
    if (event.sender.kind === 'peer') this.#report('refused', event.sender.meshDid, reason, { scope: 'mesh' })
    else this.#report('refused', event.sender.did, reason, { mesh: event.sender.mesh })
  }

  /** Counts every update a peer mesh lands in a room, in the rooms loaded now and later. */
  watchRooms(rooms: WatchedRooms): void {
    const watch = (room: Room) => {
      room.doc.on('update', (_update: Uint8Array, origin: unknown) => {
        const o = origin as RoomOrigin | undefined
        if (o?.source === 'peer') this.#report('accepted', o.meshDid, 'room.update', { scope: 'mesh' })
      })
    }
    for (const room of rooms.loaded()) watch(room)
    rooms.onLoad(watch)
  }

  #report(
    outcome: Outcome,
    did: string,
    reason: string,
    options?: { scope?: 'principal' | 'mesh'; mesh?: string },
  ): void {
    const sink = this.#interactions()
    if (outcome === 'accepted') sink?.accepted(did, reason, options)
    else sink?.refused(did, reason, options)
  }
}
