import { resolveMentions } from '../api/mentions.ts'
import { BadRequestError } from '../errors.ts'
import { isDidKey } from '../identity/index.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'
import type { Room } from './room.ts'
import { type MessageEntry, ROOM_LIMITS } from './room-entries.ts'

/** A mention of a local user, stored on this (their home) mesh. */
export interface Notification {
  /** Also the paging cursor. */
  id: string
  kind: 'mention'
  room: string
  roomName: string
  message: string
  author: string
  authorDid: string
  mesh: string
  body: string
  ts: number
}

export interface NotificationPage {
  notifications: Notification[]
  nextCursor: string | null
}

const NOTE_PREFIX = 'n/1/'
const NOTE_PREVIEW = 280
const pad = (n: number): string => String(n).padStart(15, '0')

/**
 * Mentions of this mesh's principals, kept on their home mesh (sublevel
 * `notifications`, key `n/1/<did>/<ts>.<room>.<message>`): written in the same batch
 * as the message that mentions them, read newest first.
 */
export class RoomNotifications {
  readonly #notes: Sublevel<Notification>
  readonly #ownMesh: string

  constructor(init: { store: MeshStore; ownMesh: string }) {
    this.#notes = init.store.sublevel<Notification>('notifications')
    this.#ownMesh = init.ownMesh
  }

  /** The notification rows for the mentions of local members in new messages (written with them). */
  opsFor(room: Room, messages: Array<{ id: string; entry: MessageEntry }>): StoreOperation[] {
    const ops: StoreOperation[] = []
    const roomName = room.meta()?.name ?? room.id
    for (const { id, entry } of messages) {
      for (const did of entry.mentions) {
        if (did === entry.author) continue
        const m = room.member(did)
        if (m === undefined || m.mesh !== this.#ownMesh) continue
        const noteId = `${pad(entry.ts)}.${room.id}.${id}`
        const note: Notification = {
          id: noteId,
          kind: 'mention',
          room: room.id,
          roomName,
          message: id,
          author: room.displayName(entry.author, entry.authorMesh),
          authorDid: entry.author,
          mesh: entry.authorMesh,
          body: entry.body.slice(0, NOTE_PREVIEW),
          ts: entry.ts,
        }
        ops.push({
          type: 'put',
          sublevel: this.#notes,
          key: `${NOTE_PREFIX}${did}/${noteId}`,
          value: note,
        } as StoreOperation)
      }
    }
    return ops
  }

  /** Newest first; `after` is the id of the last notification already seen. */
  async page(did: string, options: { after?: string; limit?: number } = {}): Promise<NotificationPage> {
    const limit = pageLimit(options.limit)
    if (options.after !== undefined && !/^[0-9]{15}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(options.after))
      throw new BadRequestError('invalid cursor')
    const prefix = `${NOTE_PREFIX}${did}/`
    const lt = options.after === undefined ? `${prefix}~` : prefix + options.after
    const notifications: Notification[] = []
    let more = false
    for await (const note of this.#notes.values({ gte: prefix, lt, reverse: true, limit: limit + 1 })) {
      if (notifications.length === limit) {
        more = true
        break
      }
      notifications.push(note)
    }
    return { notifications, nextCursor: more ? (notifications.at(-1)?.id ?? null) : null }
  }
}

/** A page size, 1..200 (default 50); MESH_BAD_REQUEST otherwise. */
export function pageLimit(limit = 50): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new BadRequestError('limit must be 1..200')
  return limit
}

/**
 * Mentions in a body (the forms and punctuation rules: src/api/mentions.ts, shared with the
 * console): `@local_id` and `@local_id:<this mesh>` (a local member), `@local_id:mesh-name`
 * (a foreign member), and bare did:keys. Unknown names are left as text.
 */
export function parseMentions(room: Room, body: string, ownMesh: string): string[] {
  const members = [...room.members().values()]
  const ownName = members.find((m) => m.mesh === ownMesh)?.meshName
  const found = new Set(
    resolveMentions(body, members, { did: ownMesh, ...(ownName !== undefined ? { name: ownName } : {}) }),
  )
  for (const match of body.matchAll(/did:key:z[1-9A-HJ-NP-Za-km-z]{40,60}/g)) {
    if (isDidKey(match[0])) found.add(match[0])
  }
  return [...found].slice(0, ROOM_LIMITS.maxMentions)
}
