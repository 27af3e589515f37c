import { MEMBER_ROLES } from './schemas/rooms.ts'
// tasks across meshes (SPEC §13)
import type { TaskEntry } from './task-entries.ts'

/**
 * The entries of a room's Yjs document (rooms/README-layout.md), as the node writes and
 * checks them and as the console reads them over y-websocket. Every entry is a plain
 * JSON object stored once, under a key derived from its content, in one of the
 * top-level Y.Maps below; nothing is ever overwritten or deleted. The node's shape
 * checks, seals and limits are in rooms/room-entries.ts.
 */

/** The top-level Y.Maps of a room document; any other top-level type is refused. */
export const ROOM_MAPS = [
  'meta',
  'messages',
  'reactions',
  'redactions',
  'members',
  'clients',
  'seals',
  'tasks', // tasks across meshes (SPEC §13)
] as const
export type RoomMapName = (typeof ROOM_MAPS)[number]
/** The maps whose entries are sealed (every one but `seals` itself). */
// tasks across meshes (SPEC §13): 'tasks'
export const SEALED_MAPS = [
  'meta',
  'messages',
  'reactions',
  'redactions',
  'members',
  'clients',
  'tasks',
] as const
export type SealedMapName = (typeof SEALED_MAPS)[number]

/** The key of the single entry in `meta`. */
export const META_KEY = 'room'

export { MEMBER_ROLES }
export type MemberRole = (typeof MEMBER_ROLES)[number]
/**
 * Members everywhere: the role of a member entry that ends a membership for good (the
 * member's own mesh removed it, or the home mesh did): writes dated at or after it are refused.
 */
export const MEMBERSHIP_ENDED = 'removed'
export type Tier = 1 | 2 | 3 | 4

export interface RoomMeta {
  v: 1
  id: string
  name: string
  topic: string
  homeMesh: string
  createdBy: string
  createdAt: number
}

export interface MessageEntry {
  v: 1
  room: string
  author: string
  authorMesh: string
  body: string
  mentions: string[]
  ts: number
  replyTo?: string
  // files in rooms (issue 18): the files the message names
  attachments?: Attachment[]
}

// files in rooms (issue 18): a file a message names, by CID (v1, raw, sha-256)
export interface Attachment {
  cid: string
  name: string
  size: number
  mime: string
}

export interface ReactionEntry {
  v: 1
  room: string
  message: string
  emoji: string
  author: string
  authorMesh: string
  ts: number
}

export interface RedactionEntry {
  v: 1
  room: string
  message: string
  author: string
  authorMesh: string
  ts: number
  reason?: string
}

export interface MemberEntry {
  v: 1
  room: string
  did: string
  mesh: string
  meshName: string
  localId: string
  role: MemberRole | typeof MEMBERSHIP_ENDED
  tier: Tier
  ts: number
  /**
   * Kinds across meshes: the member's membership credential (VC-JWT) by its mesh
   * (`mesh`), which tells a peer a human from an agent (rooms/member-credential.ts).
   * Absent on entries from before it existed, and on guests under a chain.
   */
  vc?: string
}

export interface ClientBinding {
  mesh: string
  room: string
  /** For a y-websocket client: the session's did; absent for the node's own client. */
  did?: string
  /**
   * For a committed client id (at least COMMITTED_CLIENT_MIN): the nonce with which
   * `mesh` derived it, `committedClientId(mesh, room, nonce)`; 16 bytes, base64url.
   */
  nonce?: string
}

/**
 * `mesh` is the owning mesh's identity (its genesis did). `key` names the key that
 * signed when it is not the identity's own (a later key, after a rotation); absent,
 * the identity's key signed (every seal made before a rotation).
 */
export interface Seal {
  mesh: string
  key?: string
  hash: string
  /** posts15: a leaf of a tree (rooms/seal-tree.ts): its place and sibling hashes; `sig` covers the root. */
  at?: number
  path?: string[]
  sig: string
}

export type Entry =
  | RoomMeta
  | MessageEntry
  | ReactionEntry
  | RedactionEntry
  | MemberEntry
  | ClientBinding
  | TaskEntry // tasks across meshes (SPEC §13)

// issue 15 (batch15): one signature over the entries a transaction seals (README-layout.md)
/** An entry's seal when its transaction sealed several: `entries[i]` of the batch record `batch`. */
export interface BatchSeal {
  mesh: string
  key?: string
  hash: string
  batch: string
  i: number
}

/**
 * The batch record, `seals` key `batch/<id>`: `sig` covers JCS `{room, batch: entries[, mesh]}`,
 * or (posts15: one signature for the records of several rooms) `{batchRoot[, mesh]}`, the
 * root its id at place `at` and the sibling hashes `path` lead to.
 */
export interface SealBatch {
  mesh: string
  key?: string
  entries: Array<[map: string, key: string, hash: string]>
  at?: number
  path?: string[]
  sig: string
}
