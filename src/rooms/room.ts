import { randomBytes } from 'node:crypto'
import type { Awareness } from 'y-protocols/awareness'
import type * as YT from 'yjs'
import type { Attachment } from '../api/room-entries.ts' // files in rooms (issue 18)
import { MeshError, UnavailableError } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import type { StoreOperation } from '../store/index.ts'
import { type ClientAnswer, ClientTurn, type ClientTurnOrigin } from './client-turn.ts' // issue 15, wsturn15
import { InboundFrames } from './inbound-frames.ts' // issue 15, verify15
import { awarenessProtocol, Y } from './lazy-yjs.ts' // issue 15: loaded on first use
import { effectiveMembers, endKey, membershipEnds, type SealedMember } from './membership.ts'
import type { SealKeys } from './mesh-keys.ts'
import { OwnSeals } from './own-seals.ts' // issue 15, posts15
import { applyAsSent } from './peer-apply.ts' // issue 15, b6peer
import {
  committedClientId,
  META_KEY,
  type MemberEntry,
  type MessageEntry,
  type ReactionEntry,
  type RedactionEntry,
  ROOM_MAPS,
  type RoomMeta,
  type Seal,
  type SealedMapName,
  sealKey,
} from './room-entries.ts'
import type { RoomLog } from './room-log.ts'
import type { PreverifiedUpdate } from './seal-preverify.ts' // issue 15, verify15
import {
  checkLocalRules,
  type UpdateSender,
  type ValidationResult,
  type ValidationTarget,
  validateUpdate,
} from './validate-update.ts'
import { type Write, WriteTurn } from './write-turn.ts' // issue 15, batch15

/**
 * Transaction origins: the sync layer never sends an update back to where it came
 * from, and the store never stores what it just loaded.
 */
export type RoomOrigin =
  | ClientTurnOrigin
  | { source: 'peer'; meshDid: string }
  | { source: 'store' }
  | { source: 'local' }

export interface RoomInit {
  id: string
  homeMesh: string
  /** This mesh's identity (genesis did): the `mesh` of its bindings and seals. */
  ownMesh: string
  /** This mesh's current key: it seals what its users write (read at each seal: a rotation shows at once). */
  key: () => Ed25519KeyPair
  /** Which keys speak for which mesh (seals by rotated keys). */
  meshKeys?: SealKeys
  now: () => number
  maxForeignParticipants: () => number
  /** Told of every refused update (after the room is known to be unchanged). */
  onRejected: (room: Room, error: MeshError, sender: UpdateSender) => void
  /** Operations committed with an update that brings new messages (notifications). */
  opsForMessages: (room: Room, messages: Array<{ id: string; entry: MessageEntry }>) => StoreOperation[]
}

export interface MessageView {
  id: string
  /** `@local_id` for a local author, `@local_id:mesh-name` for a foreign one. */
  author: string
  authorDid: string
  mesh: string
  body: string
  mentions: string[]
  ts: number
  replyTo?: string
  redacted?: true
  /** emoji → number of reactions. */
  reactions: Record<string, number>
  // files in rooms (issue 18)
  attachments?: Attachment[]
}

export interface MessagePage {
  messages: MessageView[]
  nextCursor: string | null
}

/** For the sending client: what the node added (bindings, seals; wsturn15: other clients' of the turn); it already has the rest. */
export type ClientApplyResult = ClientAnswer

/**
 * One room: its Yjs document, the indexes derived from it, and the only two ways it
 * changes: a validated update from a client or peer, or the node's own sealed write.
 */
export class Room implements ValidationTarget {
  readonly id: string
  readonly homeMesh: string
  readonly doc: YT.Doc
  readonly meshKeys: SealKeys | undefined
  readonly #init: RoomInit
  readonly #ownMesh: string
  /** Puts and seals the node's own entries (its client id committed with a fresh nonce a load). */
  readonly #seals: OwnSeals
  #log?: RoomLog
  #lastWrite: Promise<void> = Promise.resolve()
  #extraOps: StoreOperation[] = []
  #failed: unknown
  // lazy rooms (issue 15): when it was last used, who holds it, writes not yet durable
  #usedAt = 0
  #holds = 0
  #writes = 0
  readonly #turn: WriteTurn // batch15
  readonly #inbound: InboundFrames // peer frames given to applyPeerUpdate, not yet applied (verify15)
  readonly #clients: ClientTurn // clients' updates of this turn, not yet applied (wsturn15)
  #unloaded = false
  #awareness: Awareness | undefined
  /** New messages of the transaction being committed (indexed, not yet logged). */
  #fresh: Array<{ id: string; entry: MessageEntry }> = []
  // indexes
  readonly #order: Array<{ ts: number; id: string }> = []
  readonly #sealedMembers: SealedMember[] = []
  #members: Map<string, MemberEntry> | undefined
  #ends: Map<string, number> | undefined
  readonly #reactions = new Map<string, Map<string, Set<string>>>()
  readonly #redacted = new Set<string>()

  constructor(init: RoomInit) {
    this.id = init.id
    this.homeMesh = init.homeMesh
    this.#init = init
    this.#ownMesh = init.ownMesh
    this.meshKeys = init.meshKeys
    this.#inbound = new InboundFrames(init.id)
    this.#turn = new WriteTurn({
      room: init.id,
      assertHealthy: () => this.#assertHealthy(),
      has: (map, key) => this.doc.getMap(map).has(key),
      sealedBy: init.ownMesh,
      signer: init.key,
      leaf: (entries, signer) => this.#seals.leaf(entries, signer),
      check: (entries, from) =>
        checkLocalRules(this, entries, init.now(), init.maxForeignParticipants(), from),
      commit: (entries, ops, tree) => {
        this.#extraOps.push(...ops)
        this.doc.transact(() => this.#seals.sealAll(entries, tree), LOCAL)
        return this.#lastWrite
      },
    })
    this.doc = new Y.Doc({ gc: false })
    // The node writes under an id no other mesh can bind (room-entries.ts, committed ids).
    const nonce = randomBytes(16).toString('base64url')
    this.doc.clientID = committedClientId(init.ownMesh, init.id, nonce)
    this.#seals = new OwnSeals({ doc: this.doc, room: init.id, ownMesh: init.ownMesh, nonce, key: init.key })
    // Typed as maps before any update arrives (otherwise Yjs creates untyped roots).
    for (const name of ROOM_MAPS) this.doc.getMap(name)
    this.#clients = new ClientTurn({
      doc: this.doc,
      ownMesh: init.ownMesh,
      room: init.id,
      assertHealthy: () => this.#assertHealthy(),
      validate: (update, sender) =>
        validateUpdate(this, update, sender, {
          now: init.now(),
          maxForeignParticipants: init.maxForeignParticipants(),
        }),
      rejected: (error, sender) => init.onRejected(this, error, sender),
      put: (map, key, value) => this.#seals.put(map, key, value),
      seal: (written) => this.#seals.sealWritten(written),
      assertWhole: () => this.#assertWhole(),
      durable: () => this.#lastWrite,
    })
    this.doc.on('afterTransaction', this.#afterTransaction)
  }

  /**
   * Attaches the durable log (after loading, so that loading writes nothing). The `update`
   * listener comes with it: Yjs encodes a transaction's update only for such listeners, and
   * loading would otherwise encode the whole stored state once more for nothing.
   */
  attachLog(log: RoomLog): void {
    if (this.#log === undefined) this.doc.on('update', this.#onUpdate)
    this.#log = log
  }

  /** When the room was last loaded, updated or written (ms, the room's clock). */
  get usedAt(): number {
    return this.#usedAt
  }

  touch(): void {
    this.#usedAt = this.#init.now()
  }

  /** Keeps the room loaded until the returned release is called (a y-websocket client). */
  hold(): () => void {
    this.#holds++
    let held = true
    return () => {
      if (held) this.#holds--
      held = false
    }
  }

  /** Whether the room may not be unloaded now, however long it was idle (see loaded-rooms.ts). */
  get inUse(): boolean {
    if (
      this.#holds > 0 ||
      this.#writes > 0 ||
      this.#turn.pending > 0 ||
      this.#clients.pending > 0 ||
      this.#inbound.pending > 0 ||
      this.#log?.busy === true
    )
      return true
    const awareness = this.#awareness
    if (awareness === undefined) return false
    for (const client of awareness.getStates().keys()) if (client !== awareness.clientID) return true
    return false
  }

  /** Drops the document; whoever still holds this Room is told to load the room again. */
  unload(): void {
    this.#unloaded = true
    this.#log?.close()
    this.doc.destroy()
  }

  get failed(): boolean {
    return this.#failed !== undefined
  }

  markFailed(err: unknown): void {
    this.#failed = err
  }

  /**
   * Presence and typing (y-protocols awareness), shared by the y-websocket endpoint and
   * the links to peer meshes; created on first use, destroyed with the document.
   */
  get awareness(): Awareness {
    if (this.#awareness === undefined) {
      const awareness = new awarenessProtocol.Awareness(this.doc)
      awareness.setLocalState(null)
      this.#awareness = awareness
    }
    return this.#awareness
  }

  meta(): RoomMeta | undefined {
    return this.doc.getMap('meta').get(META_KEY) as RoomMeta | undefined
  }

  // ---- ValidationTarget ----

  sealedMembers(): Iterable<SealedMember> {
    return this.#sealedMembers
  }

  members(): Map<string, MemberEntry> {
    this.#members ??= effectiveMembers(this.#sealedMembers, this.homeMesh)
    return this.#members
  }

  // ---- reads ----

  member(did: string): MemberEntry | undefined {
    return this.members().get(did)
  }

  /** When the membership of `did` from `mesh` ended (ms), if it has (membership.ts). */
  endedAt(did: string, mesh: string): number | undefined {
    this.#ends ??= membershipEnds(this.#sealedMembers, this.homeMesh)
    return this.#ends.get(endKey(mesh, did))
  }

  /**
   * Whether an authored entry is dated at or after its author's membership ended: one
   * this replica took before the ending reached it, refused everywhere else, is shown
   * nowhere (a message reads as redacted).
   */
  outlived(entry: { author: string; authorMesh: string; ts: number }): boolean {
    const ended = this.endedAt(entry.author, entry.authorMesh)
    return ended !== undefined && entry.ts >= ended
  }

  message(id: string): MessageEntry | undefined {
    return this.doc.getMap('messages').get(id) as MessageEntry | undefined
  }

  get messageCount(): number {
    return this.#order.length
  }

  isRedacted(id: string): boolean {
    return this.#redacted.has(id)
  }

  /** Messages ordered by (ts, id), after the message `after` (exclusive). */
  page(after: string | undefined, limit: number): MessagePage {
    let start = 0
    if (after !== undefined) {
      const entry = this.message(after)
      if (entry === undefined) throw new MeshError('MESH_BAD_REQUEST', 'unknown cursor', { after })
      start = this.#position(entry.ts, after) + 1
    }
    const slice = this.#order.slice(start, start + limit)
    const messages = slice.map(({ id }) => this.view(id) as MessageView)
    const more = start + limit < this.#order.length
    return { messages, nextCursor: more ? (slice.at(-1)?.id ?? null) : null }
  }

  view(id: string): MessageView | undefined {
    const entry = this.message(id)
    if (entry === undefined) return undefined
    const redacted = this.#redacted.has(id) || this.outlived(entry)
    const reactions: Record<string, number> = {}
    for (const [emoji, who] of this.#reactions.get(id) ?? []) reactions[emoji] = who.size
    const view: MessageView = {
      id,
      author: this.displayName(entry.author, entry.authorMesh),
      authorDid: entry.author,
      mesh: entry.authorMesh,
      body: redacted ? '' : entry.body,
      mentions: redacted ? [] : entry.mentions,
      ts: entry.ts,
      reactions,
    }
    if (entry.replyTo !== undefined) view.replyTo = entry.replyTo
    if (entry.attachments !== undefined && !redacted) view.attachments = entry.attachments // files in rooms (issue 18)
    if (redacted) view.redacted = true
    return view
  }

  displayName(did: string, mesh: string): string {
    const m = this.member(did)
    if (m === undefined || m.mesh !== mesh) return did
    return mesh === this.#ownMesh ? `@${m.localId}` : `@${m.localId}:${m.meshName}`
  }

  // ---- writes ----

  /**
   * Validates and applies an update from a peer mesh or a client of this mesh. A
   * client's new entries are bound and sealed by this mesh in the same transaction, with
   * the other client updates of this turn (client-turn.ts; issue 15, wsturn15).
   * Resolves once the change is durable; a refusal leaves the room untouched.
   */
  async applyUpdate(
    update: Uint8Array,
    sender: UpdateSender,
    connection?: unknown,
  ): Promise<ValidationResult & ClientApplyResult> {
    if (sender.kind === 'peer') return this.#applyUpdate(update, sender)
    this.#assertHealthy()
    return this.#clients.add(update, sender, connection)
  }

  /**
   * `applyUpdate` of a peer's update, its seals shared with a verifying thread from its
   * arrival (inbound-frames.ts, seal-preverify.ts; issue 15, verify15): while the main
   * thread applies the frames of a turn from the first on, the thread verifies their
   * seals from the last back. Frames given here are validated and applied strictly in
   * the order given, each synchronously with its validation, as `applyUpdate` does; a
   * seal the thread did not find good is verified (and refused) there as before.
   */
  applyPeerUpdate(update: Uint8Array, peer: string): Promise<ValidationResult> {
    return this.#inbound.give(update, (preverified) =>
      this.#applyUpdate(update, { kind: 'peer', meshDid: peer }, preverified),
    )
  }

  async #applyUpdate(
    update: Uint8Array,
    sender: UpdateSender & { kind: 'peer' },
    preverified?: PreverifiedUpdate,
  ): Promise<ValidationResult> {
    this.#assertHealthy()
    const result = validateUpdate(this, update, sender, {
      now: this.#init.now(),
      maxForeignParticipants: this.#init.maxForeignParticipants(),
      preverified,
    })
    if (result.error !== undefined) {
      this.#init.onRejected(this, result.error, sender)
      return result
    }
    // Part refused: what is applied is the rest, with a hole where each refused entry was.
    if (result.ok.refused !== undefined) this.#init.onRejected(this, result.ok.refused, sender)
    if (result.ok.empty) return result
    const applied = result.ok.update ?? update
    applyAsSent(this.doc, applied, { source: 'peer', meshDid: sender.meshDid }, result.ok.asSent)
    this.#assertWhole()
    await this.#lastWrite
    return result
  }

  /**
   * The node's own write of entries authored here (posts, reactions, membership), with the turn's
   * others: checked by the same rules, sealed in one transaction, durable on return; idempotent.
   */
  async write(entries: Write, ops: StoreOperation[] = []): Promise<void> {
    this.#assertHealthy()
    return this.#turn.add(entries, ops) // issue 15 (batch15): the turn's writes under one seal
  }

  /**
   * Entries of `map` written this turn, not in the room yet: a writer dating an entry after others sees them too.
   * The clients' updates given before are applied first (wsturn15): they are in the room, seen too.
   */
  queued(map: SealedMapName): Array<{ key: string; value: Write[number]['value'] }> {
    this.#clients.run()
    return this.#turn.queued(map)
  }

  /** Resolves when every write so far is durable (and the log's compaction done). */
  async flush(): Promise<void> {
    // Writes queued for the end of this turn first (batch15): setImmediate runs in order.
    while (this.#turn.pending > 0 || this.#clients.pending > 0)
      await new Promise((resolve) => setImmediate(resolve))
    await this.#lastWrite
    await this.#log?.drain()
  }

  /**
   * Validation proves an update applies whole (update-structs.ts); should Yjs still keep
   * part of one pending, the room is no longer what its log says: it fails, and is
   * loaded again from the store on next use.
   */
  #assertWhole(): void {
    if (this.doc.store.pendingStructs === null && this.doc.store.pendingDs === null) return
    const err = new UnavailableError('room update left pending structs; reload the room', { room: this.id })
    this.markFailed(err)
    throw err
  }

  #assertHealthy(): void {
    this.touch()
    if (this.#unloaded) throw new UnavailableError('room was unloaded; load it again', { room: this.id })
    if (this.#failed !== undefined)
      throw new UnavailableError('room storage failed; reload the room', { room: this.id })
  }

  // ---- indexes and persistence, on every change whatever its origin ----

  /** Indexes every transaction (Yjs emits this before the transaction's `update`). */
  readonly #afterTransaction = (tr: YT.Transaction): void => {
    const fresh = this.#index(tr)
    // Kept for the `update` that follows only when it is logged (not the load's whole state).
    this.#fresh = this.#log === undefined ? [] : fresh
  }

  readonly #onUpdate = (update: Uint8Array, origin: unknown): void => {
    const fresh = this.#fresh
    this.#fresh = []
    if ((origin as RoomOrigin | null)?.source === 'store' || this.#log === undefined) return
    const ops = this.#extraOps.splice(0)
    if (fresh.length > 0) ops.push(...this.#init.opsForMessages(this, fresh))
    const write = this.#log.append(update, ops)
    this.#writes++
    const settled = () => {
      this.#writes--
    }
    // The failure is reported by the log's onFailure; each awaiting writer also gets it.
    write.then(settled, settled)
    this.#lastWrite = write
  }

  #index(tr: YT.Transaction): Array<{ id: string; entry: MessageEntry }> {
    const fresh: Array<{ id: string; entry: MessageEntry }> = []
    const changed = new Map<string, Set<string | null>>()
    for (const [type, keys] of tr.changed) {
      const name =
        (type as unknown as { _item: unknown })._item === null ? rootName(this.doc, type) : undefined
      if (name !== undefined) changed.set(name, keys)
    }
    const seals = this.doc.getMap('seals')
    for (const key of changed.get('members') ?? []) {
      if (key === null) continue
      const entry = this.doc.getMap('members').get(key) as MemberEntry
      const seal = seals.get(sealKey('members', key)) as Seal | undefined
      this.#sealedMembers.push({ key, entry, sealedBy: seal?.mesh ?? this.#ownMesh })
      this.#members = undefined
      this.#ends = undefined
    }
    for (const key of changed.get('messages') ?? []) {
      if (key === null) continue
      const entry = this.doc.getMap('messages').get(key) as MessageEntry
      this.#order.splice(this.#position(entry.ts, key, true), 0, { ts: entry.ts, id: key })
      fresh.push({ id: key, entry })
    }
    for (const key of changed.get('reactions') ?? []) {
      if (key === null) continue
      const r = this.doc.getMap('reactions').get(key) as ReactionEntry
      let byEmoji = this.#reactions.get(r.message)
      if (byEmoji === undefined) {
        byEmoji = new Map()
        this.#reactions.set(r.message, byEmoji)
      }
      let who = byEmoji.get(r.emoji)
      if (who === undefined) {
        who = new Set()
        byEmoji.set(r.emoji, who)
      }
      who.add(`${r.authorMesh} ${r.author}`)
    }
    for (const key of changed.get('redactions') ?? []) {
      if (key === null) continue
      this.#redacted.add((this.doc.getMap('redactions').get(key) as RedactionEntry).message)
    }
    return fresh
  }

  /** Index of (ts, id) in the order, or where it would go when `insert`. */
  #position(ts: number, id: string, insert = false): number {
    let lo = 0
    let hi = this.#order.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const m = this.#order[mid] as { ts: number; id: string }
      if (m.ts < ts || (m.ts === ts && m.id < id)) lo = mid + 1
      else hi = mid
    }
    if (!insert && this.#order[lo]?.id !== id) throw new MeshError('MESH_BAD_REQUEST', 'unknown cursor')
    return lo
  }
}

const LOCAL = { source: 'local' } satisfies RoomOrigin

function rootName(doc: YT.Doc, type: unknown): string | undefined {
  for (const [name, t] of doc.share) if (t === type) return name
  return undefined
}
