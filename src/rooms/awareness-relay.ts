import { awarenessProtocol, decoding, encoding } from './lazy-yjs.ts' // issue 15: loaded on first use
import type { Link } from './link.ts'
import type { Refuse } from './refusals.ts'
import type { Room, RoomOrigin } from './room.ts'
import { type ClientBinding, ROOM_LIMITS } from './room-entries.ts'
import type { ShareBook } from './share.ts'
import { MalformedFrameError, ROOM_SYNC_LIMITS } from './sync-protocol.ts'

const MAX_CLAIMS_PER_ROOM = 10_000

export interface AwarenessRelayComponents {
  /** This mesh's identity: the claim on its own clients' ids. */
  identity: () => string
  shares: Pick<ShareBook, 'peersOf'>
  /** The open link with a peer, if any. */
  link: (peer: string) => Link | undefined
  refuse: Refuse
}

/**
 * Awareness between meshes: this mesh's own clients' states go to every peer a room
 * is shared with (once its link is ready for the room); a peer's states are kept only
 * for the Yjs client ids it may speak for, and stamped with its mesh.
 */
export class AwarenessRelay {
  readonly #c: AwarenessRelayComponents
  readonly #watched = new WeakSet<Room>()
  /** Per room, which mesh spoke first for each Yjs client id. */
  readonly #claims = new Map<string, Map<number, string>>()

  constructor(components: AwarenessRelayComponents) {
    this.#c = components
  }

  /** Relays the room's local awareness changes from now on (once per room). */
  watch(room: Room): void {
    if (this.#watched.has(room)) return
    this.#watched.add(room)
    const awareness = room.awareness
    awareness.on(
      'update',
      (
        { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
        origin: unknown,
      ) => {
        // Only what this mesh's own clients say travels: no peer speaks for another.
        if ((origin as RoomOrigin | null)?.source === 'peer') return
        const identity = this.#c.identity()
        const claims = this.#claimsOf(room.id)
        const ids = [...added, ...updated, ...removed].filter((id) => {
          const owner = claims.get(id)
          if (owner !== undefined && owner !== identity) return false
          claims.set(id, identity)
          return true
        })
        if (ids.length === 0) return
        const update = awarenessProtocol.encodeAwarenessUpdate(awareness, ids)
        for (const share of this.#c.shares.peersOf(room.id)) {
          const link = this.#c.link(share.peer)
          if (link?.ready.has(room.id)) link.send({ room: room.id, type: 'awareness', update })
        }
      },
    )
  }

  /**
   * Awareness from a peer: each state must be for a Yjs client id bound to that mesh
   * in the room (or not bound, and not claimed by another mesh or a local client),
   * a JSON object (or null) of at most 4 KiB; it is stamped with `mesh`.
   */
  receive(link: Link, room: Room, update: Uint8Array): void {
    const peer = link.peer
    const refuse = (code: Parameters<Refuse>[2], reason: string, message: string) =>
      this.#c.refuse(peer, room.id, code, reason, message, link)
    const kept: Array<{ client: number; clock: number; state: string }> = []
    try {
      const d = decoding.createDecoder(update.slice())
      const count = decoding.readVarUint(d)
      if (count > ROOM_SYNC_LIMITS.maxAwarenessStates) {
        refuse('MESH_TOO_LARGE', 'awareness-too-many', 'too many awareness states')
        return
      }
      const clients = room.doc.getMap('clients')
      const claims = this.#claimsOf(room.id)
      for (let i = 0; i < count; i++) {
        const client = decoding.readVarUint(d)
        const clock = decoding.readVarUint(d)
        const text = decoding.readVarString(d)
        const bound = clients.get(String(client)) as ClientBinding | undefined
        const owner = claims.get(client)
        if ((bound !== undefined && bound.mesh !== peer) || (owner !== undefined && owner !== peer)) {
          refuse('MESH_UPDATE_REJECTED', 'awareness-impersonation', 'awareness for a client of another mesh')
          continue
        }
        if (Buffer.byteLength(text) > ROOM_LIMITS.maxAwarenessBytes) {
          refuse('MESH_TOO_LARGE', 'awareness-too-large', 'awareness state too large')
          continue
        }
        const state = parseState(text)
        if (state === undefined) {
          refuse('MESH_BAD_REQUEST', 'awareness-malformed', 'awareness state is not an object')
          continue
        }
        claims.set(client, peer)
        kept.push({
          client,
          clock,
          state: state === null ? 'null' : JSON.stringify({ ...state, mesh: peer }),
        })
      }
      if (d.pos !== d.arr.length) throw new MalformedFrameError('trailing bytes')
    } catch {
      refuse('MESH_BAD_REQUEST', 'malformed', 'malformed awareness update')
      return
    }
    if (kept.length === 0) return
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, kept.length)
    for (const k of kept) {
      encoding.writeVarUint(e, k.client)
      encoding.writeVarUint(e, k.clock)
      encoding.writeVarString(e, k.state)
    }
    awarenessProtocol.applyAwarenessUpdate(room.awareness, encoding.toUint8Array(e), {
      source: 'peer',
      meshDid: peer,
    } satisfies RoomOrigin)
  }

  #claimsOf(room: string): Map<number, string> {
    let claims = this.#claims.get(room)
    if (claims === undefined || claims.size > MAX_CLAIMS_PER_ROOM) {
      claims = new Map()
      this.#claims.set(room, claims)
    }
    return claims
  }
}

/** A JSON object or null; undefined for anything else. */
function parseState(text: string): object | null | undefined {
  let state: unknown
  try {
    state = JSON.parse(text)
  } catch {
    return undefined
  }
  if (state === null) return null
  return typeof state === 'object' && !Array.isArray(state) ? state : undefined
}
