import type * as Y from 'yjs'
import { MeshError, type MeshErrorCode } from '../errors.ts'
import { credentialProblem } from './member-credential.ts'
import {
  canWrite,
  effectiveMembers,
  FOREIGN_MEMBER_ROLES,
  foreignCount,
  isModerator,
  membersByDate,
  type SealedMember,
} from './membership.ts'
import type { MeshKey, SealKeys } from './mesh-keys.ts'
import {
  type ClientBinding,
  COMMITTED_CLIENT_MIN,
  commitsTo,
  contentAddressed,
  contentId,
  ENTRY_SHAPE,
  type Entry,
  entryTime,
  isClientKey,
  isSeal,
  META_KEY,
  type MemberEntry,
  type MessageEntry,
  ROOM_LIMITS,
  type RoomMapName,
  type RoomMeta,
  type Seal,
  type SealedMapName,
  sealKey,
  type VerifiedSeals,
  verifySeal,
} from './room-entries.ts'
import {
  BATCH_PREFIX,
  type BatchSeal,
  batchInUse,
  batchRecordsOf,
  checkSigner,
  isBatched,
  isBatchKey,
  isBatchSeal,
  isSealBatch,
  listedIn,
  type SealBatch,
  verifiedOnce,
} from './seal-batch.ts' // issue 15, batch15
import type { PreverifiedUpdate } from './seal-preverify.ts' // issue 15, verify15

/** Who sent an update: a y-websocket client of this mesh, or a peer mesh. */
export type UpdateSender = { kind: 'client'; did: string; mesh: string } | { kind: 'peer'; meshDid: string }

// tasks across meshes (SPEC §13)
import { checkTask } from './task-rules.ts'
import { REJECT_REASONS, Refusal, type RejectReason, refuse } from './update-refusal.ts'
import { answering, bindingsOf, checkHoles, salvage } from './update-salvage.ts'
import { encodeStructs, holdsJustNew, type RawWrite, type ReadUpdate, readStructs } from './update-structs.ts'

export { REJECT_REASONS, type RejectReason }

/** What validation needs from a room (implemented by Room). */
export interface ValidationTarget {
  readonly id: string
  readonly homeMesh: string
  readonly doc: Y.Doc
  /**
   * Which keys speak for which mesh identity. Without it, only seals by an identity's
   * own key (no `seal.key`) verify, with no retirement check.
   */
  readonly meshKeys?: SealKeys
  /** The member entries in the doc, with the mesh that sealed each. */
  sealedMembers(): Iterable<SealedMember>
  /** The effective members (see membership.ts). */
  members(): Map<string, MemberEntry>
}

export interface ValidateOptions {
  now?: number
  maxForeignParticipants?: number
  maxUpdateBytes?: number
  /** The update's seals shared with the verifying thread (seal-preverify.ts; issue 15, verify15). */
  preverified?: PreverifiedUpdate
}

/** Options of one validation, with what it learnt so far (a seal is verified once however often its entry is checked). */
interface Checking extends ValidateOptions {
  verified: VerifiedSeals
  /** Batch records (`id sig`) found good (batch15); in a salvage, the update's entries (`map/key`). */
  goodBatches: Set<string>
  updateKeys?: Map<string, unknown>
}

/** One entry written by an update (or by the node itself). */
export interface NewEntry {
  map: SealedMapName
  key: string
  value: Entry
  /** The mesh whose seal covers it; for a client's entries, this mesh (it seals them). */
  sealedBy: string
  /** The Yjs client id that wrote it (undefined for the node's own writes). */
  client?: number
}

export interface ValidatedUpdate {
  /** New entries, in update order (seals and bindings included for peers). */
  entries: NewEntry[]
  /** Client ids that wrote new structs. */
  clients: number[]
  /** True when the update holds nothing new (a replay): applying it is a no-op. */
  empty: boolean
  /** The update to apply, when it is not the one received: its refused entries left out. */
  update?: Uint8Array
  asSent?: ReturnType<typeof holdsJustNew> // b6peer: the update holds just what applying it adds (peer-apply.ts)
  /** What of the update was refused (the first refusal; `details.refusedEntries`). */
  refused?: MeshError
}

export type ValidationResult =
  | { ok: ValidatedUpdate; error?: undefined }
  | { ok?: undefined; error: MeshError }

const LOCAL_CODES: Partial<Record<RejectReason, MeshErrorCode>> = {
  'not-member': 'MESH_FORBIDDEN',
  'membership-ended': 'MESH_FORBIDDEN',
  'read-only': 'MESH_FORBIDDEN',
  'not-author-or-moderator': 'MESH_FORBIDDEN',
  'member-rules': 'MESH_FORBIDDEN',
  'foreign-limit': 'MESH_POLICY_REJECTED',
  'unknown-message': 'MESH_NOT_FOUND',
  'future-ts': 'MESH_BAD_REQUEST',
  'past-ts': 'MESH_BAD_REQUEST',
  'member-credential': 'MESH_VC_INVALID',
  // tasks across meshes (SPEC §13)
  'task-rules': 'MESH_FORBIDDEN',
  'unknown-task': 'MESH_NOT_FOUND',
}

/**
 * `checkRules` for the node's own writes: a refusal becomes the MeshError a local
 * caller should see (forbidden, not found …), with `details.reason`.
 */
export function checkLocalRules(
  room: ValidationTarget,
  entries: NewEntry[],
  now: number,
  maxForeign: number,
  from = 0, // batch15: entries before it are the turn's earlier writes, checked already
): void {
  try {
    checkRules(room, entries, now, maxForeign, from)
  } catch (err) {
    if (!(err instanceof Refusal)) throw err
    throw new MeshError(LOCAL_CODES[err.reason] ?? 'MESH_UPDATE_REJECTED', err.message, {
      reason: err.reason,
      ...err.info,
    })
  }
}

/**
 * Checks an update against the room's rules before anything touches the room.
 * Synchronous, so nothing can change the room between the check and the apply.
 * A refusal is `{error}` with code MESH_UPDATE_REJECTED (or MESH_TOO_LARGE) and
 * `details.reason` one of REJECT_REASONS.
 */
export function validateUpdate(
  room: ValidationTarget,
  update: Uint8Array,
  sender: UpdateSender,
  options: ValidateOptions = {},
): ValidationResult {
  const maxBytes = options.maxUpdateBytes ?? ROOM_LIMITS.maxUpdateBytes
  if (!(update instanceof Uint8Array)) return { error: rejected('malformed', 'update is not bytes') }
  if (update.byteLength > maxBytes) {
    return {
      error: new MeshError(
        'MESH_TOO_LARGE',
        `room update of ${update.byteLength} bytes exceeds ${maxBytes}`,
        {
          reason: 'too-large',
          room: room.id,
          bytes: update.byteLength,
        },
      ),
    }
  }
  // Seals the verifying thread found good for these very bytes count as verified (issue 15, verify15).
  const pre = options.preverified?.update === update ? options.preverified : undefined
  const checking: Checking = { ...options, verified: pre?.verified ?? new Map(), goodBatches: new Set() }
  try {
    const read = readStructs(room.doc, update, pre?.decoded)
    if (read.writes.length === 0 && read.holes.length === 0)
      return { ok: { entries: [], clients: [], empty: true } }
    // Deletions are never applied: the update less its delete set (update-structs.ts).
    const applied = read.deletes ? encodeStructs(read.byClient) : update
    try {
      const ok = checkWhole(room, read, sender, checking)
      return { ok: applied === update ? ok : { ...ok, update: applied } }
    } catch (err) {
      // A refused entry (not a malformed update): keep what else the update holds.
      if (!(err instanceof Refusal) || err.reason === 'apply-failed' || err.reason === 'incomplete') throw err
      return salvaged(room, read, sender, checking, err)
    }
  } catch (err) {
    return { error: asError(room, err) }
  }
}

function checkWhole(
  room: ValidationTarget,
  read: ReadUpdate,
  sender: UpdateSender,
  options: Checking,
): ValidatedUpdate {
  // No trial apply on a copy of the room: readStructs proves the update applies whole
  // (every struct a root-map entry without origins, each client's clocks contiguous from
  // the room's state, no gap, no delete set applied), so it cannot throw or stay pending.
  const entries = checkWrites(room, read.writes, sender, options)
  checkHoles(room, read, sender)
  return { entries, clients: clientsOf(read), empty: false, asSent: holdsJustNew(read) }
}

function asError(room: ValidationTarget, err: unknown): MeshError {
  if (!(err instanceof Refusal)) return rejected('malformed', 'update could not be read', { room: room.id })
  const error = rejected(err.reason, err.message, { room: room.id, ...err.info })
  // Two contents under one Yjs id: replicas would disagree for good.
  if (err.reason === 'replay-conflict') return new MeshError('MESH_CONFLICT', error.message, error.details)
  return error
}

function clientsOf(read: ReadUpdate): number[] {
  return [...new Set([...read.writes.map((w) => w.client), ...read.holes.map((h) => h.client)])]
}

/**
 * The update less its refused entries, as an update of its own (update-salvage.ts),
 * checked again whole; `ok.refused` says what was refused. Nothing kept: the refusal.
 */
function salvaged(
  room: ValidationTarget,
  read: ReadUpdate,
  sender: UpdateSender,
  options: Checking,
  first: Refusal,
): ValidationResult {
  const answersFor = answering(room, sender)
  options.updateKeys = new Map(
    read.writes.filter((w) => w.map !== 'seals').map((w) => [`${w.map}/${w.key}`, w.value]),
  )
  const entryOf = new Map<RawWrite, NewEntry>()
  const result = salvage(read, {
    check: (group, prior) => {
      const entries = prior.writes.flatMap((w) => entryOf.get(w) ?? [])
      const fresh = checkWrites(room, group, sender, options, { writes: prior.writes, entries })
      const written = group.filter((w) => w.map !== 'seals')
      written.forEach((w, i) => {
        const entry = fresh[i]
        if (entry !== undefined) entryOf.set(w, entry)
      })
    },
    answersFor: (client, prior) => answersFor(client, bindingsOf(prior.writes)),
  })
  const refusal = result.refused ?? first
  // Nothing kept (no entry, no hole): the refusal stands for the whole update.
  if (result.byClient.size === 0) return { error: asError(room, refusal) }
  const update = encodeStructs(result.byClient)
  let again: ValidatedUpdate
  try {
    again = checkWhole(room, readStructs(room.doc, update), sender, options)
  } catch {
    return { error: asError(room, first) }
  }
  if (result.refused === undefined) return { ok: { ...again, update } }
  const refused = asError(room, refusal)
  refused.details.refusedEntries = result.refusedGroups
  if (result.holed.length > 0) refused.details.holes = result.holed.length
  return { ok: { ...again, update, refused } }
}

function rejected(reason: RejectReason, message: string, details: Record<string, unknown> = {}): MeshError {
  return new MeshError('MESH_UPDATE_REJECTED', message, { reason, ...details })
}

function mapOf(doc: Y.Doc, name: RoomMapName): Y.Map<unknown> {
  return doc.getMap(name)
}

function checkWrites(
  room: ValidationTarget,
  writes: RawWrite[],
  sender: UpdateSender,
  options: Checking,
  prior: { writes: RawWrite[]; entries: NewEntry[] } = { writes: [], entries: [] },
): NewEntry[] {
  const doc = room.doc
  const now = options.now ?? Date.now()
  // `prior`: writes of this update already checked and accepted (update-salvage.ts).
  const seen = new Set<string>(prior.writes.map((w) => `${w.map}/${w.key}`))
  const seals = new Map<string, { seal: Seal | BatchSeal; client: number }>()
  const bindings = bindingsOf(prior.writes)
  // Batch records (batch15): accepted earlier in a salvage (checked there), or new here.
  const batches = batchRecordsOf(prior.writes)
  const newBatches: string[] = []
  const entryWrites: RawWrite[] = []
  for (const w of writes) {
    const full = `${w.map}/${w.key}`
    if (seen.has(full) || mapOf(doc, w.map).has(w.key))
      refuse('overwrite', 'entries are immutable', { map: w.map })
    seen.add(full)
    if (w.map === 'seals' && isBatchKey(w.key)) {
      if (!isSealBatch(w.value)) refuse('bad-shape', 'malformed seal batch')
      newBatches.push(w.key.slice(BATCH_PREFIX.length))
      batches.set(newBatches.at(-1) as string, { record: w.value, client: w.client })
    } else if (w.map === 'seals') {
      if (!isSeal(w.value) && !isBatchSeal(w.value)) refuse('bad-shape', 'malformed seal')
      seals.set(w.key, { seal: w.value, client: w.client })
    } else {
      if (!ENTRY_SHAPE[w.map](w.value)) refuse('bad-shape', `malformed ${w.map} entry`, { map: w.map })
      if (w.map === 'clients') {
        if (!isClientKey(w.key)) refuse('bad-key', 'a client binding is keyed by a Yjs client id')
        const binding = w.value as ClientBinding
        const id = Number(w.key)
        if (id >= COMMITTED_CLIENT_MIN ? !commitsTo(binding, id) : binding.nonce !== undefined)
          refuse('client-commitment', 'a committed client id is bound only by the mesh that derived it', {
            client: id,
            mesh: binding.mesh,
          })
        bindings.set(w.key, binding)
      }
      entryWrites.push(w)
    }
  }

  // Asked for every entry and seal; a catch-up chunk has few writers (and the doc does not change here).
  const owners = new Map<number, ClientBinding | undefined>()
  const ownerOf = (client: number): ClientBinding | undefined => {
    if (owners.has(client)) return owners.get(client)
    const key = String(client)
    const owner = (mapOf(doc, 'clients').get(key) as ClientBinding | undefined) ?? bindings.get(key)
    owners.set(client, owner)
    return owner
  }
  const batchOk = (id: string, record: SealBatch) =>
    verifiedOnce(record, id, room.id, options.goodBatches, options.verified)
  const batchOf = (id: string) =>
    batches.get(id) ?? (mapOf(doc, 'seals').get(`${BATCH_PREFIX}${id}`) as SealBatch | undefined)
  const histories = new Map<string, readonly MeshKey[] | undefined>()
  const keysOf = (mesh: string): readonly MeshKey[] | undefined => {
    if (!histories.has(mesh)) histories.set(mesh, room.meshKeys?.keysOf(mesh))
    return histories.get(mesh)
  }

  if (sender.kind === 'client') {
    for (const w of writes) {
      if (w.map !== 'messages' && w.map !== 'reactions' && w.map !== 'redactions')
        refuse('client-scope', `a client may not write ${w.map}`, { map: w.map })
      const bound = ownerOf(w.client)
      if (bound !== undefined && (bound.mesh !== sender.mesh || bound.did !== sender.did))
        refuse('client-spoof', 'this client id belongs to someone else', { client: w.client })
      // The node binds a client's id without a nonce: one in the committed range would not hold.
      if (w.client >= COMMITTED_CLIENT_MIN)
        refuse('client-commitment', 'a client writes with a Yjs client id below 2^32', { client: w.client })
    }
  }

  const entries: NewEntry[] = []
  const usedSeals = new Set<string>()
  for (const w of entryWrites) {
    const map = w.map as SealedMapName
    const value = w.value as Entry
    // The key must be what the content says: then a replay is the same key, a no-op.
    if (map === 'meta') {
      if (w.key !== META_KEY) refuse('bad-key', 'meta has one entry, "room"')
      if ((value as RoomMeta).id !== room.id) refuse('wrong-room', 'meta names another room')
    } else if (map === 'clients') {
      if ((value as ClientBinding).room !== room.id) refuse('wrong-room', 'binding names another room')
    } else {
      if ((value as MessageEntry).room !== room.id) refuse('wrong-room', 'entry names another room', { map })
      if (w.key !== contentId(value)) refuse('bad-key', 'entry key is not its content id', { map })
    }

    let sealedBy: string
    if (sender.kind === 'client') {
      const authored = value as MessageEntry
      if (authored.author !== sender.did || authored.authorMesh !== sender.mesh)
        refuse('client-scope', 'a client writes only as its session did', { map })
      // This mesh seals it now, so it is dated now: a client does not backdate history.
      if (authored.ts < now - ROOM_LIMITS.maxPastSkewMs)
        refuse('past-ts', 'a client’s entry is dated in the past', { map, ts: authored.ts })
      sealedBy = sender.mesh
    } else {
      const sk = sealKey(map, w.key)
      const found = seals.get(sk)
      if (found === undefined) refuse('missing-seal', 'entry has no seal', { map })
      // A content-addressed entry's key was checked above to be its content id: not hashed again.
      const known = contentAddressed(map) ? w.key : undefined
      if (isBatched(found.seal)) {
        const b = batchOf(found.seal.batch)
        if (b === undefined)
          refuse('missing-seal', 'entry’s batch record is not here', { map, awaitsBatch: true })
        const record = 'record' in b ? b.record : b
        if (!listedIn(found.seal, record, map, w.key, known ?? contentId(value)))
          refuse('bad-seal', 'entry is not listed so in its batch record', { map })
        if ('record' in b && !batchOk(found.seal.batch, record))
          refuse('bad-seal', 'batch does not verify', { map })
      } else if (!verifySeal(found.seal, room.id, map, w.key, value, known, options.verified))
        refuse('bad-seal', 'seal does not verify', { map })
      checkSigner(keysOf(found.seal.mesh), found.seal, entryTime(map, value), map)
      usedSeals.add(sk)
      sealedBy = found.seal.mesh
      const required = requiredSealer(map, value, room.homeMesh)
      if (required !== undefined && sealedBy !== required)
        refuse('bad-seal', 'entry is not sealed by the mesh that owns it', { map, sealedBy })
      const sealOwner = ownerOf(found.client)
      if (sealOwner === undefined) refuse('unbound-client', 'seal written by an unbound client id')
      if (sealOwner.mesh !== sealedBy) refuse('client-spoof', 'seal written by another mesh’s client id')
    }
    const owner = ownerOf(w.client)
    if (sender.kind === 'peer') {
      if (owner === undefined) refuse('unbound-client', 'entry written by an unbound client id', { map })
      if (owner.mesh !== sealedBy)
        refuse('client-spoof', 'entry written by a client id bound to another mesh', {
          map,
          client: w.client,
        })
    }
    entries.push({ map, key: w.key, value, sealedBy, client: w.client })
  }
  for (const sk of seals.keys()) if (!usedSeals.has(sk)) refuse('orphan-seal', 'seal without its entry')
  for (const id of newBatches) {
    const { record, client } = batches.get(id) as { record: SealBatch; client: number }
    if (!batchOk(id, record)) refuse('bad-seal', 'batch does not verify')
    checkSigner(keysOf(record.mesh), record, undefined, 'seals')
    // In a salvage the record comes before the bindings (one may be sealed by it); checked whole after.
    const owner =
      ownerOf(client) ?? (options.updateKeys?.get(`clients/${client}`) as ClientBinding | undefined)
    if (owner === undefined) refuse('unbound-client', 'batch written by an unbound client id')
    if (owner.mesh !== record.mesh) refuse('client-spoof', 'batch written by another mesh’s client id')
    if (!batchInUse(record, options.updateKeys ?? seen, doc))
      refuse('orphan-seal', 'batch record without any of its entries')
  }

  checkRules(
    room,
    [...prior.entries, ...entries],
    now,
    options.maxForeignParticipants ?? Number.POSITIVE_INFINITY,
    prior.entries.length,
  )
  return entries
}

/** The mesh that must seal an entry; undefined for members (decided by the rules). */
function requiredSealer(map: SealedMapName, value: Entry, homeMesh: string): string | undefined {
  switch (map) {
    case 'meta':
      return homeMesh
    case 'clients':
      return (value as ClientBinding).mesh
    case 'members':
      return undefined
    default:
      return (value as MessageEntry).authorMesh
  }
}

/**
 * Room rules for a set of new entries against the room's current state plus these
 * entries. Used for every update and for the node's own writes.
 */
export function checkRules(
  room: ValidationTarget,
  entries: NewEntry[],
  now: number,
  maxForeign: number,
  /** Entries before this index were checked already: they count as state only. */
  from = 0,
): void {
  const doc = room.doc
  const newMembers: SealedMember[] = []
  const newMessages = new Map<string, MessageEntry>()
  for (const e of entries) {
    if (e.map === 'members')
      newMembers.push({ key: e.key, entry: e.value as MemberEntry, sealedBy: e.sealedBy })
    if (e.map === 'messages') newMessages.set(e.key, e.value as MessageEntry)
  }
  let members = room.members()
  if (newMembers.length > 0) {
    for (const m of newMembers) {
      const entry = m.entry
      const bad = credentialProblem(entry, room.meshKeys, m.sealedBy)
      if (bad) refuse('member-credential', bad.message, { vc: bad.problem, did: entry.did, mesh: entry.mesh })
      if (m.sealedBy !== room.homeMesh) {
        if (m.sealedBy !== entry.mesh) refuse('member-rules', 'a mesh adds only its own members')
        if (entry.tier !== 4 || !FOREIGN_MEMBER_ROLES.includes(entry.role))
          refuse('member-rules', 'a foreign member joins as a tier 4 member')
      }
    }
    const before = foreignCount(members, room.homeMesh)
    members = effectiveMembers([...room.sealedMembers(), ...newMembers], room.homeMesh)
    const after = foreignCount(members, room.homeMesh)
    if (after > before && after > maxForeign)
      refuse('foreign-limit', 'the room has its maximum of foreign participants', { max: maxForeign })
  }
  // Writes are judged by the membership as of their date, whatever reached this replica first.
  const byDate = membersByDate([...room.sealedMembers(), ...newMembers], room.homeMesh, members)
  const messageOf = (id: string): MessageEntry | undefined =>
    newMessages.get(id) ?? (mapOf(doc, 'messages').get(id) as MessageEntry | undefined)
  const notBefore = datingFloor(room, entries, newMembers)

  for (const e of from === 0 ? entries : entries.slice(from)) {
    switch (e.map) {
      case 'meta':
        if (mapOf(doc, 'meta').size > 0) refuse('meta', 'meta is written once')
        if ((e.value as RoomMeta).homeMesh !== room.homeMesh) refuse('meta', 'meta names another home mesh')
        break
      case 'members':
        notBefore(e.map, e.value as MemberEntry)
        break
      case 'messages':
      case 'reactions':
      case 'redactions':
      case 'tasks': {
        const v = e.value as MessageEntry
        if (v.ts > now + ROOM_LIMITS.maxFutureSkewMs)
          refuse('future-ts', 'entry is dated in the future', { ts: v.ts })
        notBefore(e.map, v)
        const ended = byDate.endedAt(v.author, v.authorMesh)
        if (ended !== undefined && v.ts >= ended)
          refuse('membership-ended', 'the author’s membership has ended', {
            author: v.author,
            endedAt: ended,
          })
        const member = byDate.standing.get(v.author)
        if (member === undefined || member.mesh !== v.authorMesh)
          refuse('not-member', 'author is not a member of the room', { author: v.author })
        if (!canWrite(member, v.authorMesh)) refuse('read-only', 'author may only read this room')
        if (e.map === 'tasks') checkTask(room, entries, e, byDate.standing, member) // tasks across meshes (SPEC §13)
        if (e.map === 'messages' || e.map === 'tasks') break
        const target = messageOf((e.value as { message: string }).message)
        if (target === undefined) refuse('unknown-message', 'no such message in this room')
        if (
          e.map === 'redactions' &&
          !(target.author === v.author && target.authorMesh === v.authorMesh) &&
          !isModerator(member)
        )
          refuse('not-author-or-moderator', 'only the author or a moderator may redact')
        break
      }
      default:
        break
    }
  }
}

/**
 * History may be backfilled (old entries are legitimate), but not invented: no entry is
 * dated before the room was created, and no message, reaction or redaction before its
 * author's first membership of the room (by the member entries' own dates), each with
 * the usual skew between meshes' clocks. Without a known `meta` (a replica that has
 * not yet received it), only the membership bound holds.
 */
function datingFloor(
  room: ValidationTarget,
  entries: NewEntry[],
  newMembers: SealedMember[],
): (map: SealedMapName, value: { ts: number; author?: string; authorMesh?: string }) => void {
  const skew = ROOM_LIMITS.maxPastSkewMs
  const meta =
    (mapOf(room.doc, 'meta').get(META_KEY) as RoomMeta | undefined) ??
    (entries.find((e) => e.map === 'meta')?.value as RoomMeta | undefined)
  let firstJoined: Map<string, number> | undefined
  const joinedAt = (did: string, mesh: string): number | undefined => {
    if (firstJoined === undefined) {
      firstJoined = new Map()
      for (const m of [...room.sealedMembers(), ...newMembers]) {
        const k = `${m.entry.mesh} ${m.entry.did}`
        const seen = firstJoined.get(k)
        if (seen === undefined || m.entry.ts < seen) firstJoined.set(k, m.entry.ts)
      }
    }
    return firstJoined.get(`${mesh} ${did}`)
  }
  return (map, value) => {
    if (meta !== undefined && value.ts < meta.createdAt - skew)
      refuse('past-ts', 'entry is dated before the room was created', { map, ts: value.ts })
    if (value.author === undefined || value.authorMesh === undefined) return
    const joined = joinedAt(value.author, value.authorMesh)
    if (joined !== undefined && value.ts < joined - skew)
      refuse('past-ts', 'entry is dated before its author joined the room', { map, ts: value.ts })
  }
}

/** The refusal a result carries: the whole update's, or (`ok.refused`) part of it. */
export function refusalOf(result: ValidationResult): MeshError | undefined {
  return result.error ?? result.ok.refused
}
