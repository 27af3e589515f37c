import { createHash, hash, randomBytes } from 'node:crypto'
import {
  type ClientBinding,
  type Entry,
  MEMBER_ROLES,
  MEMBERSHIP_ENDED,
  type MemberEntry,
  type MessageEntry,
  type ReactionEntry,
  type RedactionEntry,
  type RoomMeta,
  type Seal,
  type SealedMapName,
} from '../api/room-entries.ts'
import { canonicalJson, type Ed25519KeyPair, isDidKey, verifyBytes } from '../identity/index.ts'
import { attachmentsOk } from './attachments.ts' // files in rooms (issue 18)
import { messageEntryText } from './entry-jcs.ts' // issue 15 (b6peer)
import { leafOf, treeOk, treeSignedText } from './seal-tree.ts' // issue 15, posts15
// tasks across meshes (SPEC §13)
import { isTaskEntry } from './task-entries.ts'

/**
 * The room document's entries (see README-layout.md). Their shapes are part of the API
 * contract (api/room-entries.ts: the console reads them too); their limits, checks and
 * seals are here.
 */
export {
  type ClientBinding,
  type Entry,
  MEMBER_ROLES,
  MEMBERSHIP_ENDED,
  META_KEY,
  type MemberEntry,
  type MemberRole,
  type MessageEntry,
  type ReactionEntry,
  type RedactionEntry,
  ROOM_MAPS,
  type RoomMapName,
  type RoomMeta,
  SEALED_MAPS,
  type Seal,
  type SealedMapName,
  type Tier,
} from '../api/room-entries.ts'

export const ROOM_LIMITS = {
  /** Largest update a peer or client may send, in bytes. */
  maxUpdateBytes: 256 * 1024,
  /** Largest message body, UTF-8 bytes. */
  maxBodyBytes: 8 * 1024,
  maxMentions: 32,
  maxEmojiBytes: 32,
  maxNameLength: 128,
  maxTopicLength: 1024,
  maxLocalIdLength: 64,
  maxMeshNameLength: 128,
  maxReasonLength: 512,
  /** Largest membership credential (VC-JWT) a member entry carries, characters. */
  maxCredentialLength: 4096,
  /** How far into the future an entry's `ts` may be. */
  maxFutureSkewMs: 60_000,
  /**
   * How far into the past a y-websocket client's own entry may be dated (the node seals
   * it as of now); and the clock skew allowed between meshes when a peer's entry is
   * held against the room's creation and its author's first membership.
   */
  maxPastSkewMs: 60_000,
  /** Largest awareness state from a y-websocket client, bytes of JSON. */
  maxAwarenessBytes: 4 * 1024,
} as const

/**
 * Client ids from here up (below 2^53) are committed: a binding holds one only when
 * the id is `committedClientId(binding.mesh, room, binding.nonce)`, so no mesh can
 * bind an id another mesh uses. Below it are the uint32 ids Yjs clients pick for
 * themselves (y-websocket clients; node writers before committed ids), bound first
 * come. A node writes with committed ids; its clients' ids never leave the node
 * unbound (awareness shows them under committed-range pseudonyms no one can bind).
 */
export const COMMITTED_CLIENT_MIN = 2 ** 52

/** `COMMITTED_CLIENT_MIN` + the first 52 bits of sha256("mesh-client-id" | mesh | room | nonce). */
export function committedClientId(mesh: string, room: string, nonce: string): number {
  const h = createHash('sha256').update(`mesh-client-id\0${mesh}\0${room}\0${nonce}`).digest()
  // 6 bytes = 48 bits, then 4 more from the 7th byte.
  return COMMITTED_CLIENT_MIN + h.readUIntBE(0, 6) * 16 + ((h[6] as number) >> 4)
}

/**
 * A random id in the committed range that no mesh derived: what others are shown of a
 * y-websocket client in awareness (a binding of it would need a nonce no one has).
 */
export function pseudonymClientId(): number {
  const b = randomBytes(7)
  return COMMITTED_CLIENT_MIN + b.readUIntBE(0, 6) * 16 + ((b[6] as number) >> 4)
}

/** Whether `binding` holds client id `client` by construction (a committed id and its nonce). */
export function commitsTo(binding: ClientBinding, client: number): boolean {
  return (
    binding.nonce !== undefined && committedClientId(binding.mesh, binding.room, binding.nonce) === client
  )
}

/** base64url(sha256(JCS(value))): the key of messages, reactions, redactions and members. */
export function contentId(value: unknown): string {
  // One-shot (a string is hashed as UTF-8): a Hash object a call cost more than the hashing.
  // issue 15 (b6peer): a message's JCS written out (entry-jcs.ts), the generic walk otherwise.
  return hash('sha256', messageEntryText(value) ?? canonicalJson(value), 'base64url')
}

/** Whether a map's entries are keyed by their content id (all but `meta` and `clients`). */
export function contentAddressed(map: string): boolean {
  return map !== 'meta' && map !== 'clients'
}

/** The key of an entry's seal in `seals`. */
export function sealKey(map: SealedMapName, key: string): string {
  return `${map}/${key}`
}

/**
 * What the owning mesh signs for an entry. A seal by a key other than the identity's
 * own also signs the identity (`mesh`), so that it speaks for that mesh only.
 */
export function sealPayload(room: string, map: SealedMapName, key: string, hash: string, mesh?: string) {
  return mesh === undefined ? { room, map, key, hash } : { room, map, key, hash, mesh }
}

const json = JSON.stringify
const SURROGATE = /[\uD800-\uDFFF]/

/**
 * The JCS text of `sealPayload(…)`, written out (issue 15: one a seal made or checked, the
 * generic JCS walk cost as much as the rest of a seal check). JCS writes strings as
 * JSON.stringify does and orders members by name: hash, key, map, mesh, room. A string
 * with a surrogate takes the generic path (JCS refuses a lone one: this throws).
 */
export function sealPayloadText(room: string, map: SealedMapName, key: string, hash: string, mesh?: string) {
  // (JSON.stringify escapes a lone surrogate where JCS refuses it: the strings are looked at.)
  if (SURROGATE.test(room) || SURROGATE.test(key) || SURROGATE.test(hash) || SURROGATE.test(mesh ?? ''))
    return canonicalJson(sealPayload(room, map, key, hash, mesh))
  return mesh === undefined
    ? `{"hash":${json(hash)},"key":${json(key)},"map":${json(map)},"room":${json(room)}}`
    : `{"hash":${json(hash)},"key":${json(key)},"map":${json(map)},"mesh":${json(mesh)},"room":${json(room)}}`
}

/** `canonicalBytes(sealPayload(…))`: what a seal's signature covers. */
export function sealPayloadBytes(
  room: string,
  map: SealedMapName,
  key: string,
  hash: string,
  mesh?: string,
): Uint8Array {
  return Buffer.from(sealPayloadText(room, map, key, hash, mesh), 'utf8')
}

/**
 * Seals whose signature was found good while one update was checked: signature →
 * signer and payload text. A refused entry makes the rest of its update be checked
 * again (update-salvage.ts), each seal then costing one lookup rather than one Ed25519
 * verification; a seal is taken as verified only for exactly the signer and payload
 * its signature was checked over.
 */
export type VerifiedSeals = Map<string, string>

/** What a `VerifiedSeals` holds for a signature found good: its signer and the payload text it covers. */
export function sealFact(signer: string, text: string): string {
  return `${signer}\n${text}`
}

/** Seals an entry for the mesh `mesh` (default: the key's own did) with `key`. */
export function makeSeal(
  key: Ed25519KeyPair,
  room: string,
  map: SealedMapName,
  entryKey: string,
  value: unknown,
  mesh: string = key.did,
  /** The entry's content id when the caller has it (a content-addressed entry's key): not hashed twice. */
  hash: string = contentId(value),
): Seal {
  const sign = (payload: Uint8Array) => Buffer.from(key.sign(payload)).toString('base64url')
  if (mesh === key.did) return { mesh, hash, sig: sign(sealPayloadBytes(room, map, entryKey, hash)) }
  return { mesh, key: key.did, hash, sig: sign(sealPayloadBytes(room, map, entryKey, hash, mesh)) }
}

/** The key whose signature a seal carries. */
export function sealSigner(seal: Seal): string {
  return seal.key ?? seal.mesh
}

/**
 * Checks a seal's hash and signature. Whether its signer may speak for `seal.mesh`
 * (a key of that mesh's history) is the caller's question (validate-update.ts).
 */
export function verifySeal(
  seal: Seal,
  room: string,
  map: SealedMapName,
  entryKey: string,
  value: unknown,
  /** The entry's content id when the caller computed it already (see `contentAddressed`). */
  known?: string,
  /** Seals verified already while checking the same update. */
  verified?: VerifiedSeals,
): boolean {
  let text: string
  try {
    const hash = known ?? contentId(value)
    if (seal.hash !== hash) return false
    text = sealPayloadText(room, map, entryKey, hash, seal.key === undefined ? undefined : seal.mesh)
  } catch {
    return false
  }
  return verifyText(sealSigner(seal), sealSignedText(seal, text), seal.sig, verified)
}

/** What a seal's signature covers, given its payload text: that text, or (posts15) its tree's root. */
export function sealSignedText(seal: Seal, text: string): string {
  if (seal.path === undefined) return text
  return treeSignedText(
    leafOf(text),
    seal.at as number,
    seal.path,
    seal.key === undefined ? undefined : seal.mesh,
  )
}

/** Whether `sig` is `signer`'s over `text`; found good once, a lookup in `verified` thereafter. */
export function verifyText(signer: string, text: string, sig: string, verified?: VerifiedSeals): boolean {
  const fact = sealFact(signer, text)
  if (verified?.get(sig) === fact) return true
  const ok = verifyBytes(signer, Buffer.from(text, 'utf8'), sig)
  if (ok) verified?.set(sig, fact)
  return ok
}

/** The time an entry claims (ms), by which a retired key's seal is judged; undefined for bindings. */
export function entryTime(map: SealedMapName, value: Entry): number | undefined {
  if (map === 'clients') return undefined
  if (map === 'meta') return (value as RoomMeta).createdAt
  return (value as MessageEntry).ts
}

// ---- shape checks: values come from the network, so every field is checked ----

type Obj = Record<string, unknown>

function isObj(v: unknown): v is Obj {
  return (
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
  )
}

function onlyKeys(o: Obj, required: readonly string[], optional: readonly string[] = []): boolean {
  for (const k of required) if (!(k in o)) return false
  for (const k of Object.keys(o)) if (!required.includes(k) && !optional.includes(k)) return false
  return true
}

function str(v: unknown, max: number, min = 0): v is string {
  return typeof v === 'string' && v.length >= min && v.length <= max
}

const ID_RE = /^[A-Za-z0-9_-]{43}$/
export const ROOM_ID_RE = /^[A-Za-z0-9_-]{8,64}$/

export function isEntryId(v: unknown): v is string {
  return typeof v === 'string' && ID_RE.test(v)
}

function isTs(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8')
}

export function isRoomMeta(v: unknown): v is RoomMeta {
  return (
    isObj(v) &&
    onlyKeys(v, ['v', 'id', 'name', 'topic', 'homeMesh', 'createdBy', 'createdAt']) &&
    v.v === 1 &&
    typeof v.id === 'string' &&
    ROOM_ID_RE.test(v.id) &&
    str(v.name, ROOM_LIMITS.maxNameLength, 1) &&
    str(v.topic, ROOM_LIMITS.maxTopicLength) &&
    isDidKey(v.homeMesh) &&
    isDidKey(v.createdBy) &&
    isTs(v.createdAt)
  )
}

/** What every authored entry (message, reaction, redaction) holds: `v` 1, its room, author, author's mesh and time. */
function isAuthored(v: unknown, required: readonly string[], optional: readonly string[] = []): v is Obj {
  return (
    isObj(v) &&
    onlyKeys(v, ['v', 'room', 'author', 'authorMesh', 'ts', ...required], optional) &&
    v.v === 1 &&
    typeof v.room === 'string' &&
    isDidKey(v.author) &&
    isDidKey(v.authorMesh) &&
    isTs(v.ts)
  )
}

export function isMessageEntry(v: unknown): v is MessageEntry {
  return (
    isAuthored(v, ['body', 'mentions'], ['replyTo', 'attachments']) && // files in rooms (issue 18): 'attachments'
    attachmentsOk(v.attachments) && // files in rooms (issue 18)
    typeof v.body === 'string' &&
    v.body.length > 0 &&
    utf8Length(v.body) <= ROOM_LIMITS.maxBodyBytes &&
    Array.isArray(v.mentions) &&
    v.mentions.length <= ROOM_LIMITS.maxMentions &&
    v.mentions.every((m) => isDidKey(m)) &&
    new Set(v.mentions).size === v.mentions.length &&
    (v.replyTo === undefined || isEntryId(v.replyTo))
  )
}

export function isReactionEntry(v: unknown): v is ReactionEntry {
  return (
    isAuthored(v, ['message', 'emoji']) &&
    isEntryId(v.message) &&
    typeof v.emoji === 'string' &&
    v.emoji.length > 0 &&
    utf8Length(v.emoji) <= ROOM_LIMITS.maxEmojiBytes &&
    !/\s/.test(v.emoji)
  )
}

export function isRedactionEntry(v: unknown): v is RedactionEntry {
  return (
    isAuthored(v, ['message'], ['reason']) &&
    isEntryId(v.message) &&
    (v.reason === undefined || str(v.reason, ROOM_LIMITS.maxReasonLength))
  )
}

export function isMemberEntry(v: unknown): v is MemberEntry {
  return (
    isObj(v) &&
    onlyKeys(v, ['v', 'room', 'did', 'mesh', 'meshName', 'localId', 'role', 'tier', 'ts'], ['vc']) &&
    v.v === 1 &&
    typeof v.room === 'string' &&
    isDidKey(v.did) &&
    isDidKey(v.mesh) &&
    str(v.meshName, ROOM_LIMITS.maxMeshNameLength, 1) &&
    str(v.localId, ROOM_LIMITS.maxLocalIdLength, 1) &&
    /^[A-Za-z0-9._-]+$/.test(v.localId) &&
    ((MEMBER_ROLES as readonly unknown[]).includes(v.role) || v.role === MEMBERSHIP_ENDED) &&
    (v.tier === 1 || v.tier === 2 || v.tier === 3 || v.tier === 4) &&
    isTs(v.ts) &&
    (v.vc === undefined || (str(v.vc, ROOM_LIMITS.maxCredentialLength, 1) && JWT_RE.test(v.vc)))
  )
}

/** The shape of a compact JWS (three base64url parts). */
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

export function isClientBinding(v: unknown): v is ClientBinding {
  return (
    isObj(v) &&
    onlyKeys(v, ['mesh', 'room'], ['did', 'nonce']) &&
    isDidKey(v.mesh) &&
    typeof v.room === 'string' &&
    (v.did === undefined || isDidKey(v.did)) &&
    (v.nonce === undefined || (typeof v.nonce === 'string' && /^[A-Za-z0-9_-]{22}$/.test(v.nonce)))
  )
}

export function isSeal(v: unknown): v is Seal {
  return (
    isObj(v) &&
    onlyKeys(v, ['mesh', 'hash', 'sig'], ['key', 'at', 'path']) &&
    treeOk(v.at, v.path) &&
    isDidKey(v.mesh) &&
    (v.key === undefined || (isDidKey(v.key) && v.key !== v.mesh)) &&
    isEntryId(v.hash) &&
    typeof v.sig === 'string' &&
    /^[A-Za-z0-9_-]{86}$/.test(v.sig)
  )
}

export const ENTRY_SHAPE: Record<SealedMapName, (v: unknown) => boolean> = {
  meta: isRoomMeta,
  messages: isMessageEntry,
  reactions: isReactionEntry,
  redactions: isRedactionEntry,
  members: isMemberEntry,
  clients: isClientBinding,
  tasks: isTaskEntry, // tasks across meshes (SPEC §13)
}

/** Client ids, written as decimal strings: a Yjs uint32, or a committed id below 2^53. */
export function isClientKey(key: string): boolean {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(key)) return false
  const n = Number(key)
  return n <= 0xffffffff || (n >= COMMITTED_CLIENT_MIN && Number.isSafeInteger(n))
}
