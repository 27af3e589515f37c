import { randomBytes } from 'node:crypto'
import type { RejectedLog } from '../audit/index.ts'
import { BadRequestError, ForbiddenError, type MeshError, NotFoundError } from '../errors.ts'
import { type Ed25519KeyPair, isDidKey } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'
import { Y } from './lazy-yjs.ts' // issue 15: loaded on first use
import { LoadedRooms } from './loaded-rooms.ts'
import { type LocalPrincipal, type MemberView, memberView, ownMemberEntry } from './member-entry.ts'
import { MeshKeys, type OwnKeys, type PeerKeys } from './mesh-keys.ts'
import { MessageWriter } from './message-writer.ts'
import { type NotificationPage, pageLimit, RoomNotifications } from './notifications.ts'
import { ReadCache } from './read-cache.ts'
import { Room, type RoomOrigin } from './room.ts'
import {
  contentId,
  META_KEY,
  type MemberEntry,
  type MemberRole,
  ROOM_ID_RE,
  type RoomMeta,
  type Tier,
} from './room-entries.ts'
import { RoomLog } from './room-log.ts'
import { assertNotEnded, endMemberships, removeRoomMember, setRoomRole } from './room-roles.ts'
import type { UpdateSender } from './validate-update.ts'

export type { LocalPrincipal, MemberView }

export interface RoomManagerInit {
  store: MeshStore
  /**
   * This mesh's current key: new entries are sealed with it. A function, read at every
   * seal: after a key rotation the next entry is sealed with the new key.
   */
  key: () => Ed25519KeyPair
  /**
   * This mesh's identity and key history (`MeshNode.keys()`): rooms name the mesh by its
   * identity, and its older keys' seals stay its own. Default: the key alone.
   */
  ownKeys?: () => OwnKeys
  /** The peer meshes and their key histories (the PeerBook's records); default none. */
  peerKeys?: () => Promise<Iterable<PeerKeys>>
  /** This mesh's name, shown to other meshes as `@local_id:mesh-name`. */
  meshName: string
  /** The local principal behind a did, or undefined if the did is not one of this mesh's. */
  localPrincipal: (did: string) => Promise<LocalPrincipal | undefined>
  /** Kinds across meshes: a principal's membership credential (VC-JWT), carried in its member entries. */
  credentialOf?: (did: string) => Promise<string | undefined>
  /** Every refused update is recorded here (SPEC `/api/federation/rejected`). */
  rejected?: RejectedLog
  /** Hook for reputation: called for every refused update, after it is logged. */
  onRejected?: (event: RoomRejection) => void
  logger?: Logger
  /** Live policy value; default 50. */
  maxForeignParticipantsPerRoom?: () => number
  /** Updates per room between compactions of its log; default 500. */
  compactEvery?: number
  /** Lazy rooms (issue 15): a room nobody used for this long is unloaded; default 5 min, 0 = never. */
  roomIdleUnloadMs?: number
  now?: () => number
}

/** A refused update, as told to `onRejected`. */
export interface RoomRejection {
  room: string
  sender: UpdateSender
  error: MeshError
}

/**
 * Who among this mesh's principals may find a room: `public` — listed to, readable
 * after joining by, and joinable by every local principal; `invite` — listed, shown
 * and readable only to its local members, joined only when a moderator invites (a
 * non-member is told MESH_NOT_FOUND, as for a room that does not exist).
 */
export type RoomVisibility = 'public' | 'invite'
export const ROOM_VISIBILITIES = ['public', 'invite'] as const

/** The stored record of a room this mesh holds (sublevel `rooms`, key = room id). */
export interface RoomRecord {
  id: string
  name: string
  topic: string
  homeMesh: string
  createdBy: string
  createdAt: string
  /**
   * Absent on records stored before visibility existed: read as `invite` for a DM or
   * a room homed elsewhere, `public` otherwise (see `visibilityOf`).
   */
  visibility?: RoomVisibility
  /** A direct message: `invite`, and no one is ever invited or joins. */
  dm?: true
  /** A room homed elsewhere: the local principal its share named, who may see and join it. */
  admits?: string
}

/**
 * Rooms of this mesh: creates them, loads each at most once (one loading promise per
 * room), and offers the operations behind the HTTP routes and the sync layer.
 */
export class RoomManager {
  /** This mesh's identity (genesis did): how rooms name it, whatever key it holds now. */
  readonly ownMesh: string
  readonly meshName: string
  /** Which keys speak for which mesh identity (this one's and its peers'). */
  readonly meshKeys: MeshKeys
  /** Counters for tests and metrics. */
  readonly stats = { loads: 0, rejected: 0 }
  readonly #init: RoomManagerInit
  readonly #records: Sublevel<RoomRecord>
  readonly #notifications: RoomNotifications
  readonly #rooms: LoadedRooms
  readonly #log: Logger
  readonly #now: () => number
  readonly #messages: MessageWriter
  readonly #loadListeners = new Set<(room: Room) => void>()
  /** Room records read or written (issue 15: a post reads its room's record from memory). */
  readonly #recordCache: ReadCache<RoomRecord>

  constructor(init: RoomManagerInit) {
    this.#init = init
    const first = init.key().did
    const ownKeys = init.ownKeys ?? (() => ({ identity: first, keys: [first], rotations: [] }))
    this.ownMesh = ownKeys().identity
    this.meshName = init.meshName
    this.#records = init.store.sublevel<RoomRecord>('rooms')
    this.#recordCache = new ReadCache((id) => this.#records.get(id))
    this.#log = (init.logger ?? silentLogger()).child({ area: 'rooms' })
    this.#now = init.now ?? Date.now
    this.meshKeys = new MeshKeys({
      own: ownKeys,
      ...(init.peerKeys !== undefined ? { peers: init.peerKeys } : {}),
      store: init.store,
      logger: this.#log,
    })
    this.#notifications = new RoomNotifications({ store: init.store, ownMesh: this.ownMesh })
    this.#rooms = new LoadedRooms({
      read: (id) => this.#load(id),
      onLoaded: (room) => this.#loaded(room),
      idleUnloadMs: init.roomIdleUnloadMs ?? 5 * 60_000,
      now: this.#now,
      logger: this.#log,
    })
    this.#messages = new MessageWriter({
      access: (room, did) => this.access(room, did),
      ownMesh: this.ownMesh,
      now: this.#now,
    })
  }

  async start(): Promise<void> {
    await this.meshKeys.load()
    this.#rooms.start()
  }

  /** Waits for every pending write, then forgets the loaded rooms. */
  async stop(): Promise<void> {
    await this.#rooms.stop()
  }

  // ---- rooms ----

  /**
   * Creates a room homed at this mesh, with `creator` (a local principal) as its owner;
   * `visibility` default `public` (`invite` for a DM).
   */
  async create(input: {
    name: string
    topic?: string
    creator: string
    visibility?: RoomVisibility
    dm?: boolean
  }): Promise<RoomRecord> {
    const principal = await this.#principal(input.creator)
    // Hex, not base64url: an id starting with '-' would read as an option on the CLI.
    const id = randomBytes(16).toString('hex')
    const now = this.#now()
    const record: RoomRecord = {
      id,
      name: input.name,
      topic: input.topic ?? '',
      homeMesh: this.ownMesh,
      createdBy: input.creator,
      createdAt: new Date(now).toISOString(),
      visibility: input.dm === true ? 'invite' : (input.visibility ?? 'public'),
      ...(input.dm === true ? { dm: true as const } : {}),
    }
    const meta: RoomMeta = {
      v: 1,
      id,
      name: record.name,
      topic: record.topic,
      homeMesh: this.ownMesh,
      createdBy: input.creator,
      createdAt: now,
    }
    const owner = await this.#memberEntry(id, input.creator, principal, 'owner', principal.tier, now)
    const room = this.#newRoom(id, this.ownMesh)
    room.attachLog(this.#newLog(room))
    this.#rooms.add(room)
    try {
      await room.write(
        [
          { map: 'meta', key: META_KEY, value: meta },
          { map: 'members', key: contentId(owner), value: owner },
        ],
        [{ type: 'put', sublevel: this.#records, key: id, value: record } as StoreOperation],
      )
      this.#cacheRecord(record)
    } catch (err) {
      this.#rooms.forget(room)
      throw err
    }
    this.#log.info({ event: 'rooms.created', room: id }, 'room created')
    return record
  }

  /**
   * Records a room homed at another mesh (when it is shared with this one), so that
   * the sync layer can load it and fill it: an `invite` room here (the share says who
   * joins), a DM when `dm`. Idempotent.
   */
  async adopt(input: {
    id: string
    homeMesh: string
    name?: string
    topic?: string
    admits?: string
    dm?: boolean
  }): Promise<RoomRecord> {
    if (!ROOM_ID_RE.test(input.id) || !isDidKey(input.homeMesh)) throw new BadRequestError('invalid room')
    const existing = await this.#storedRecord(input.id)
    if (existing !== undefined) return existing
    const record: RoomRecord = {
      id: input.id,
      name: input.name ?? input.id,
      topic: input.topic ?? '',
      homeMesh: input.homeMesh,
      createdBy: input.homeMesh,
      createdAt: new Date(this.#now()).toISOString(),
      visibility: 'invite',
      ...(input.admits !== undefined ? { admits: input.admits } : {}),
      ...(input.dm === true ? { dm: true as const } : {}),
    }
    await this.#records.put(input.id, record)
    this.#cacheRecord(record)
    return record
  }

  /** Marks a stored room as a DM (records from before visibility existed; idempotent). */
  async markDm(id: string): Promise<void> {
    const record = await this.#storedRecord(id)
    if (record === undefined || (record.dm === true && record.visibility === 'invite')) return
    const dm: RoomRecord = { ...record, visibility: 'invite', dm: true }
    await this.#records.put(id, dm)
    this.#cacheRecord(dm)
  }

  /** Every room this mesh holds, whoever asks (the node's own views; not for a principal). */
  async list(): Promise<RoomRecord[]> {
    const out: RoomRecord[] = []
    // Room ids sort before '~' (other records of the sublevel, e.g. shares, start with it).
    for await (const record of this.#records.values({ lt: '~' }))
      out.push(this.#withMeta(this.#withVisibility(record)))
    return out
  }

  /** The rooms `did` may see: every public room, and the invite rooms it is a local member of. */
  async listFor(did: string): Promise<RoomRecord[]> {
    const out: RoomRecord[] = []
    for (const record of await this.list()) {
      if (record.visibility === 'public' || (await this.#admits(record, did))) out.push(record)
      else if (this.#localMember(await this.load(record.id), did) !== undefined) out.push(record)
    }
    return out
  }

  visibilityOf(record: RoomRecord): RoomVisibility {
    return record.visibility ?? (record.dm === true || record.homeMesh !== this.ownMesh ? 'invite' : 'public')
  }

  #withVisibility(record: RoomRecord): RoomRecord {
    return record.visibility !== undefined ? record : { ...record, visibility: this.visibilityOf(record) }
  }

  /**
   * The one visibility check of every path a local principal reads or acts through
   * (HTTP, y-websocket): the room, and `did`'s local membership. A room that `did`
   * may not see is MESH_NOT_FOUND, as a room that does not exist (its existence does
   * not leak).
   */
  async access(
    roomId: string,
    did: string,
  ): Promise<{ record: RoomRecord; room: Room; member?: MemberEntry }> {
    const record = this.#withVisibility(await this.record(roomId))
    const room = await this.load(roomId)
    const member = this.#localMember(room, did)
    if (member === undefined && record.visibility !== 'public' && !(await this.#admits(record, did)))
      throw new NotFoundError('no such room', { room: roomId })
    return { record, room, ...(member !== undefined ? { member } : {}) }
  }

  /**
   * Whether a non-member may see (and join) an invite room: the principal a share named,
   * and, in a room another mesh shared with this one (not a DM), every principal of this
   * mesh — each joins it as a tier-4 participant sealed by this mesh.
   */
  async #admits(record: RoomRecord, did: string): Promise<boolean> {
    if (record.admits === did) return true
    if (record.dm === true || record.homeMesh === this.ownMesh || record.admits === undefined) return false
    return (await this.#init.localPrincipal(did)) !== undefined
  }

  #localMember(room: Room, did: string): MemberEntry | undefined {
    const m = room.member(did)
    return m !== undefined && m.mesh === this.ownMesh ? m : undefined
  }

  async record(id: string): Promise<RoomRecord> {
    if (!ROOM_ID_RE.test(id)) throw new NotFoundError('no such room', { room: id })
    const record = await this.#storedRecord(id)
    if (record === undefined) throw new NotFoundError('no such room', { room: id })
    return this.#withMeta(this.#withVisibility(record))
  }

  /** The stored record of a room (only RoomManager writes them: kept in memory once read). */
  #storedRecord(id: string): Promise<RoomRecord | undefined> {
    return this.#recordCache.get(id)
  }

  #cacheRecord(record: RoomRecord): void {
    this.#recordCache.set(record.id, record)
  }

  /** The loaded room; loads it once however many callers ask at the same time (loaded-rooms.ts). */
  load(id: string): Promise<Room> {
    return this.#rooms.load(id)
  }

  /** Unloads the rooms idle for `idleMs` (default `roomIdleUnloadMs`); the sweep does it too. */
  unloadIdle(idleMs?: number): number {
    return this.#rooms.unloadIdle(idleMs)
  }

  /** The room if it is loaded now, without counting it as used (a peer's sync check is no use). */
  peek(id: string): Room | undefined {
    const room = this.#rooms.peek(id)
    return room?.failed === false ? room : undefined
  }

  /** Rooms loaded now. */
  loaded(): Room[] {
    return [...this.#rooms.values()]
  }

  /**
   * Calls `listener` with every room loaded or created from now on, and at once with
   * those loaded already (the sync layer watches their updates). Returns the remover.
   */
  onLoad(listener: (room: Room) => void): () => void {
    this.#loadListeners.add(listener)
    for (const room of this.#rooms.values()) listener(room)
    return () => this.#loadListeners.delete(listener)
  }

  #loaded(room: Room): void {
    for (const listener of this.#loadListeners) {
      try {
        listener(room)
      } catch (err) {
        this.#log.error({ event: 'rooms.load_listener_failed', room: room.id, err }, 'a load listener threw')
      }
    }
  }

  /** The local principal behind a did, or undefined. */
  principal(did: string): Promise<LocalPrincipal | undefined> {
    return this.#init.localPrincipal(did)
  }

  async #load(id: string): Promise<Room> {
    const record = await this.record(id)
    this.stats.loads++
    const room = this.#newRoom(id, record.homeMesh)
    const log = this.#newLog(room)
    const updates = await log.read()
    // The segments and updates in order, one transaction: no merge of the whole state first.
    if (updates.length > 0)
      room.doc.transact(
        () => {
          for (const update of updates) Y.applyUpdate(room.doc, update)
        },
        { source: 'store' } satisfies RoomOrigin,
      )
    if (room.doc.store.pendingStructs !== null) {
      this.#log.error({ event: 'rooms.load_incomplete', room: id }, 'stored room has missing updates')
    }
    room.attachLog(log)
    return room
  }

  #newRoom(id: string, homeMesh: string): Room {
    return new Room({
      id,
      homeMesh,
      ownMesh: this.ownMesh,
      key: this.#init.key,
      meshKeys: this.meshKeys,
      now: this.#now,
      maxForeignParticipants: this.#init.maxForeignParticipantsPerRoom ?? (() => 50),
      onRejected: (room, error, sender) => this.recordRefusal(room.id, sender, error),
      opsForMessages: (room, messages) => this.#notifications.opsFor(room, messages),
    })
  }

  #newLog(room: Room): RoomLog {
    return new RoomLog({
      store: this.#init.store,
      room: room.id,
      doc: room.doc,
      ...(this.#init.compactEvery !== undefined ? { compactEvery: this.#init.compactEvery } : {}),
      onFailure: (err) => {
        room.markFailed(err)
        this.#rooms.forget(room)
        this.#log.error(
          { event: 'rooms.store_failed', room: room.id, err },
          'room write failed; room unloaded',
        )
      },
    })
  }

  #withMeta(record: RoomRecord): RoomRecord {
    const meta = this.#rooms.peek(record.id)?.meta()
    if (meta === undefined) return record
    return { ...record, name: meta.name, topic: meta.topic, createdBy: meta.createdBy }
  }

  /**
   * Records a refusal (an update, an awareness state) in the rejected log and tells
   * `onRejected`; never throws.
   */
  recordRefusal(roomId: string, sender: UpdateSender, error: MeshError, kind = 'room.update'): void {
    this.stats.rejected++
    const peer = sender.kind === 'peer' ? sender.meshDid : undefined
    const details = {
      ...error.details,
      room: roomId,
      ...(sender.kind === 'client' ? { client: sender.did } : {}),
    }
    this.#log.warn(
      { event: 'rooms.update_refused', room: roomId, peer, reason: error.details.reason },
      error.message,
    )
    const recording = this.#init.rejected?.record({
      ...(peer !== undefined ? { peer } : {}),
      kind,
      code: error.code,
      reason: error.message,
      details,
    })
    recording?.catch((err: unknown) => {
      this.#log.error({ event: 'rooms.rejected_log_failed', room: roomId, err }, 'could not record a refusal')
    })
    try {
      this.#init.onRejected?.({ room: roomId, sender, error })
    } catch (err) {
      this.#log.error({ event: 'rooms.on_rejected_failed', room: roomId, err }, 'onRejected hook threw')
    }
  }

  // ---- members ----

  /**
   * A local principal asks to join (`POST /api/rooms/:id/join`): a public room admits
   * it; an invite room or a DM only answers a member (MESH_NOT_FOUND to anyone else).
   */
  async requestJoin(roomId: string, did: string): Promise<MemberView> {
    const { member } = await this.access(roomId, did)
    if (member !== undefined) return this.#memberView(member)
    return this.join(roomId, did)
  }

  /**
   * A local member with the right (the room's `owner` or a `moderator`) invites another
   * local principal into the room, who becomes a member at once. A DM invites no one
   * (MESH_FORBIDDEN); a non-member inviter is told MESH_NOT_FOUND for an invite room.
   */
  async invite(roomId: string, inviter: string, invitee: string): Promise<MemberView> {
    const { record, member } = await this.access(roomId, inviter)
    if (record.dm === true)
      throw new ForbiddenError('a direct message admits no one else', { room: roomId, reason: 'dm' })
    if (member === undefined || (member.role !== 'owner' && member.role !== 'moderator'))
      throw new ForbiddenError('only an owner or a moderator of the room invites', { room: roomId })
    return this.join(roomId, invitee)
  }

  /**
   * Adds a local principal to a room (a no-op when already a member), whatever the
   * room's visibility: the node's own decision (a share that names who joins, an
   * invite, an agent), never a principal's request.
   */
  async join(roomId: string, did: string): Promise<MemberView> {
    const room = await this.load(roomId)
    const existing = room.member(did)
    if (existing !== undefined && existing.mesh === this.ownMesh) return this.#memberView(existing)
    assertNotEnded(room, did, this.ownMesh)
    const principal = await this.#principal(did)
    const home = room.homeMesh === this.ownMesh
    const entry = await this.#memberEntry(
      roomId,
      did,
      principal,
      'member',
      home ? principal.tier : 4,
      this.#now(),
    )
    await room.write([{ map: 'members', key: contentId(entry), value: entry }])
    return this.#memberView(entry)
  }

  /** Members everywhere: `actor` (owner or moderator) sets `did`'s room role (room-roles.ts). */
  async setRole(roomId: string, actor: string, did: string, role: MemberRole): Promise<MemberView> {
    return this.#memberView(await setRoomRole(this, { room: roomId, actor, did, role, now: this.#now() }))
  }

  /** Ends every room membership of `did`, removed from this mesh (room-roles.ts); the rooms ended. */
  endMemberships(did: string): Promise<string[]> {
    return endMemberships(this, did, this.#now())
  }

  // room lifecycle (SPEC §9): see room-roles.ts removeRoomMember
  async removeMember(roomId: string, actor: string, did: string): Promise<void> {
    await removeRoomMember(this, { room: roomId, actor, did, now: this.#now() })
  }

  async members(roomId: string, asDid: string): Promise<MemberView[]> {
    const room = await this.#readable(roomId, asDid)
    return [...room.members().values()].map((m) => this.#memberView(m))
  }

  /** Kinds across meshes: the membership credential of one of this mesh's principals, carried in its entries. */
  async credentialOf(did: string): Promise<string | undefined> {
    return this.#init.credentialOf?.(did)
  }

  async #memberEntry(room: string, did: string, p: LocalPrincipal, role: MemberRole, tier: Tier, ts: number) {
    const vc = await this.credentialOf(did)
    return ownMemberEntry(this, { room, did, principal: p, role, tier, ts }, vc)
  }

  #memberView(m: MemberEntry): MemberView {
    return memberView(m, this.ownMesh)
  }

  async #principal(did: string): Promise<LocalPrincipal> {
    const p = await this.#init.localPrincipal(did)
    if (p === undefined) throw new ForbiddenError('not a principal of this mesh', { did })
    return p
  }

  /** A loaded room that `did` may read (a local member; MESH_NOT_FOUND for a room it may not see). */
  async #readable(roomId: string, did: string): Promise<Room> {
    const { room, member } = await this.access(roomId, did)
    if (member === undefined) throw new ForbiddenError('not a member of this room', { room: roomId })
    return room
  }

  /** The loaded room if `did` is a local member of it (for the y-websocket endpoint). */
  async roomFor(roomId: string, did: string): Promise<{ room: Room; member: MemberEntry }> {
    const room = await this.#readable(roomId, did)
    return { room, member: room.member(did) as MemberEntry }
  }

  // ---- messages ----

  async messages(roomId: string, asDid: string, options: { after?: string; limit?: number } = {}) {
    const limit = pageLimit(options.limit)
    const room = await this.#readable(roomId, asDid)
    return room.page(options.after, limit)
  }

  /** Posts a message as `author` (a local principal); mentions are parsed from the body. */
  post(...args: Parameters<MessageWriter['post']>): Promise<{ id: string }> {
    return this.#messages.post(...args) // files in rooms (issue 18): with attachments too
  }

  react(roomId: string, author: string, message: string, emoji: string): Promise<{ id: string }> {
    return this.#messages.react(roomId, author, message, emoji)
  }

  redact(roomId: string, author: string, message: string, reason?: string): Promise<{ id: string }> {
    return this.#messages.redact(roomId, author, message, reason)
  }

  /** Newest first; `after` is the id of the last notification already seen. */
  notifications(did: string, options: { after?: string; limit?: number } = {}): Promise<NotificationPage> {
    return this.#notifications.page(did, options)
  }
}
