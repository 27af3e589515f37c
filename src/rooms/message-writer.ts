import type { Attachment } from '../api/room-entries.ts' // files in rooms (issue 18)
import { BadRequestError, NotFoundError } from '../errors.ts'
import { parseMentions } from './notifications.ts'
import type { Room } from './room.ts'
import {
  contentId,
  isMessageEntry, // files in rooms (issue 18)
  type MessageEntry,
  type ReactionEntry,
  type RedactionEntry,
  ROOM_LIMITS,
} from './room-entries.ts'

export interface MessageWriterComponents {
  /** The room, if `did` may act in it (the room manager's one visibility check). */
  access: (roomId: string, did: string) => Promise<{ room: Room }>
  /** This mesh's identity: the `authorMesh` of every entry written here. */
  ownMesh: string
  now: () => number
}

/** What a local principal writes into a room: messages, reactions, redactions. */
export class MessageWriter {
  readonly #c: MessageWriterComponents
  #lastMessageTs = 0

  constructor(components: MessageWriterComponents) {
    this.#c = components
  }

  /** Posts a message as `author` (a local principal); mentions are parsed from the body. */
  async post(
    roomId: string,
    author: string,
    body: string,
    replyTo?: string,
    attachments?: Attachment[], // files in rooms (issue 18)
  ): Promise<{ id: string }> {
    const { room } = await this.#c.access(roomId, author)
    if (body.length === 0 || Buffer.byteLength(body) > ROOM_LIMITS.maxBodyBytes)
      throw new BadRequestError(`body must be 1..${ROOM_LIMITS.maxBodyBytes} bytes`)
    if (replyTo !== undefined && room.message(replyTo) === undefined)
      throw new NotFoundError('no such message to reply to', { replyTo })
    const entry: MessageEntry = {
      v: 1,
      room: roomId,
      author,
      authorMesh: this.#c.ownMesh,
      body,
      mentions: parseMentions(room, body, this.#c.ownMesh),
      ts: this.#messageTs(),
      ...(replyTo !== undefined ? { replyTo } : {}),
      ...(attachments !== undefined && attachments.length > 0 ? { attachments } : {}), // files in rooms (issue 18)
    }
    if (!isMessageEntry(entry)) throw new BadRequestError('malformed message (attachments?)') // files in rooms (issue 18)
    const id = contentId(entry)
    await room.write([{ map: 'messages', key: id, value: entry }])
    return { id }
  }

  react(roomId: string, author: string, message: string, emoji: string): Promise<{ id: string }> {
    return this.#onMessage(roomId, author, message, 'reactions', (authorMesh, ts) => ({
      v: 1,
      room: roomId,
      message,
      emoji,
      author,
      authorMesh,
      ts,
    }))
  }

  redact(roomId: string, author: string, message: string, reason?: string): Promise<{ id: string }> {
    return this.#onMessage(roomId, author, message, 'redactions', (authorMesh, ts) => ({
      v: 1,
      room: roomId,
      message,
      author,
      authorMesh,
      ts,
      ...(reason !== undefined ? { reason } : {}),
    }))
  }

  /**
   * The clock, but strictly increasing for this mesh's messages: two posts in one
   * millisecond would otherwise tie, and messages and notifications, ordered by ts,
   * could list them either way round.
   */
  #messageTs(): number {
    this.#lastMessageTs = Math.max(this.#c.now(), this.#lastMessageTs + 1)
    return this.#lastMessageTs
  }

  /** Writes `author`'s entry about an existing message (a reaction, a redaction). */
  async #onMessage(
    roomId: string,
    author: string,
    message: string,
    map: 'reactions' | 'redactions',
    entry: (authorMesh: string, ts: number) => ReactionEntry | RedactionEntry,
  ): Promise<{ id: string }> {
    const { room } = await this.#c.access(roomId, author)
    if (room.message(message) === undefined) throw new NotFoundError('no such message', { message })
    const value = entry(this.#c.ownMesh, this.#c.now())
    const id = contentId(value)
    await room.write([{ map, key: id, value }])
    return { id }
  }
}
