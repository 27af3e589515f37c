import { createHash } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { Key } from 'interface-datastore'
import { LRUCache } from 'lru-cache'
import { compare as compareBytes } from 'uint8arrays/compare'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
// reachable by URL (SPEC §10)
import { MESH_PROFILE_FIELDS, meshProfileSchema, pickMeshProfile } from '../api/schemas/mesh-profile.ts'
import type { MeshProfile } from '../api/types.ts'
import { BadRequestError, ClockSkewError, SignatureMismatchError, TooLargeError } from '../errors.ts'
import type { Ed25519KeyPair, RotationRecord } from '../identity/index.ts'
import {
  isDidKey,
  MAX_ROTATION_CHAIN,
  peerIdFromDid,
  signCanonical,
  verifyCanonical,
  verifyRotationChain,
} from '../identity/index.ts'
import * as precompiled from '../kernel/precompiled-validators.ts'
import { lazyValidator } from '../schema.ts'

/**
 * The signed mesh record: what a mesh publishes about itself in the DHT under
 * `/mesh/<did>`. Stored as UTF-8 JSON:
 *
 * ```
 * {v:1, did, peerId, name, multiaddrs:[string], protocolVersions:[string], version,
 *  members, bots, rooms, seq, ts, identity?, rotations?, signature,
 *  http?, manifestUrl?, description?, agents?, capabilities?}
 * ```
 *
 * The last five (SPEC §10, "reachable by URL") are what the mesh says of itself for
 * browsers and registries — its HTTP base, its manifest's URL, a description, its agents
 * `[{name, skills}]` and the capabilities it offers — optional (older records have none)
 * and bounded (api/schemas/mesh-profile.ts), signed like every other field.
 *
 * A mesh whose key was rotated adds `identity` (its genesis did) and `rotations` (the
 * chain of rotation records from the identity to `did`, identity/rotation.ts). A key it
 * retired keeps a record too, a "moved" record signed by that old key, whose chain goes
 * past `did`: whoever looks up an old did learns the current one (`movedTo`).
 *
 * `signature` is the mesh key's signature (base64url) over the RFC 8785 form of the
 * record without `signature`; `ts` is milliseconds since the epoch; `seq` only grows.
 */

/** The DHT key namespace: records live under `/mesh/<did>`. */
export const MESH_RECORD_NAMESPACE = 'mesh'
/** A record larger than this is refused (MESH_TOO_LARGE) before it is parsed. */
export const MESH_RECORD_MAX_BYTES = 8 * 1024
/** A record stamped further than this into the future is refused (MESH_CLOCK_SKEW). */
export const MESH_RECORD_MAX_SKEW_MS = 60_000

/** A record lists at most this many multiaddrs (and protocol versions). */
export const MESH_RECORD_MAX_MULTIADDRS = 32

const MAX_NAME = 128
const MAX_VERSION = 64
const MAX_MULTIADDR = 256
const MAX_PROTOCOL = 64
const RECORD_FIELDS = [
  'v',
  'did',
  'peerId',
  'name',
  'multiaddrs',
  'protocolVersions',
  'version',
  'members',
  'bots',
  'rooms',
  'seq',
  'ts',
  'identity',
  'rotations',
  'signature',
  ...MESH_PROFILE_FIELDS, // reachable by URL (SPEC §10)
] as const

/** What a mesh says about itself; the rest of the record is identity, ordering and proof. */
export interface MeshRecordContent extends MeshProfile {
  name: string
  multiaddrs: string[]
  protocolVersions: string[]
  version: string
  members: number
  bots: number
  rooms: number
}

export interface MeshRecord extends MeshRecordContent {
  v: 1
  did: string
  peerId: string
  seq: number
  ts: number
  /** The mesh's genesis did, once it has rotated its key. */
  identity?: string
  /** The rotation chain from `identity` to the current key (which may be past `did`: a moved record). */
  rotations?: RotationRecord[]
  signature: string
}

/** Who a mesh is beyond its key: its identity and chain, for the record (see MeshRecord). */
export interface MeshRecordKeys {
  identity: string
  rotations: RotationRecord[]
}

/** The current key of the mesh that published `record`: its own did, or where a moved record points. */
export function currentDidOf(record: MeshRecord): string {
  return record.rotations?.at(-1)?.next ?? record.did
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** The DHT key of a mesh's record: the UTF-8 bytes of `/mesh/<did>`. */
export function meshRecordKey(did: string): Uint8Array {
  return encoder.encode(`/${MESH_RECORD_NAMESPACE}/${did}`)
}

/** The did inside a `/mesh/<did>` DHT key; MESH_BAD_REQUEST for any other key. */
export function didFromMeshRecordKey(key: Uint8Array): string {
  let text: string
  try {
    text = decoder.decode(key)
  } catch {
    throw new BadRequestError('mesh record key is not UTF-8')
  }
  const prefix = `/${MESH_RECORD_NAMESPACE}/`
  const did = text.slice(prefix.length)
  if (!text.startsWith(prefix) || !isDidKey(did)) {
    throw new BadRequestError('mesh record key is not /mesh/<did:key>', { key: text.slice(0, 160) })
  }
  return did
}

/** Signs `content` as the mesh `key`'s record number `seq`. */
export function createMeshRecord(
  key: Ed25519KeyPair,
  content: MeshRecordContent,
  seq: number,
  ts: number = Date.now(),
  keys?: MeshRecordKeys,
): MeshRecord {
  const unsigned: Omit<MeshRecord, 'signature'> = {
    v: 1,
    did: key.did,
    peerId: key.peerId().toString(),
    name: content.name,
    multiaddrs: [...content.multiaddrs],
    protocolVersions: [...content.protocolVersions],
    version: content.version,
    members: content.members,
    bots: content.bots,
    rooms: content.rooms,
    seq,
    ts,
    ...(keys !== undefined && keys.rotations.length > 0
      ? { identity: keys.identity, rotations: keys.rotations }
      : {}),
    ...pickMeshProfile(content), // reachable by URL (SPEC §10)
  }
  checkShape({ ...unsigned, signature: '' })
  return { ...unsigned, signature: signCanonical(key, unsigned) }
}

export function encodeMeshRecord(record: MeshRecord): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(record))
  if (bytes.byteLength > MESH_RECORD_MAX_BYTES) {
    throw new TooLargeError(`mesh record is ${bytes.byteLength} bytes, limit ${MESH_RECORD_MAX_BYTES}`)
  }
  return bytes
}

/**
 * Parses and fully checks a record: size, shape (unknown fields refused), that its
 * peerId is its did's key, and its signature. Throws MESH_TOO_LARGE,
 * MESH_BAD_REQUEST or MESH_SIGNATURE_MISMATCH.
 */
export function parseMeshRecord(bytes: Uint8Array): MeshRecord {
  if (bytes.byteLength > MESH_RECORD_MAX_BYTES) {
    throw new TooLargeError(`mesh record is ${bytes.byteLength} bytes, limit ${MESH_RECORD_MAX_BYTES}`)
  }
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new BadRequestError('mesh record is not UTF-8 JSON')
  }
  const record = checkShape(value)
  if (record.peerId !== peerIdFromDid(record.did).toString()) {
    throw new SignatureMismatchError('mesh record peerId is not the key of its did', {
      did: record.did,
      peerId: record.peerId,
    })
  }
  const { signature, ...unsigned } = record
  if (!verifyCanonical(record.did, unsigned, signature)) {
    throw new SignatureMismatchError('mesh record signature does not verify with its did', {
      did: record.did,
    })
  }
  return record
}

/**
 * kad-dht validator for the `/mesh/` namespace: the record must be valid and signed by
 * the very did named in its DHT key, and not stamped in the future.
 */
export async function validateMeshRecord(key: Uint8Array, value: Uint8Array): Promise<void> {
  checkMeshRecord(key, value)
}

/**
 * Records whose bytes passed the checks, by sha256 of DHT key and value. A node sees the
 * same record bytes again and again (kad-dht validates every PUT and GET answer, lookups
 * and directory rounds fetch known meshes anew); the signature and shape are checked
 * once, the clock on every call. Entries are frozen: callers share them.
 */
const checkedRecords = new LRUCache<string, MeshRecord>({ max: 4096 })

/** validateMeshRecord's checks, returning the record they parsed. */
export function checkMeshRecord(key: Uint8Array, value: Uint8Array): MeshRecord {
  const id = createHash('sha256').update(key).update(value).digest('base64')
  let record = checkedRecords.get(id)
  if (record === undefined) {
    const did = didFromMeshRecordKey(key)
    record = parseMeshRecord(value)
    if (record.did !== did) {
      throw new SignatureMismatchError('mesh record is signed by another did than its key names', {
        key: did,
        did: record.did,
      })
    }
    record = deepFreeze(record)
    checkedRecords.set(id, record)
  }
  if (record.ts > Date.now() + MESH_RECORD_MAX_SKEW_MS) {
    throw new ClockSkewError('mesh record is stamped in the future', { did: record.did, ts: record.ts })
  }
  return record
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}

/** Where kad-dht keeps the record of DHT key `key` in libp2p's datastore. */
export function dhtRecordKey(key: Uint8Array): Key {
  return new Key(`/dht/record/${uint8ArrayToString(key, 'base32')}`, false)
}

/**
 * Orders two records of one did: higher `seq` wins; equal seqs (an equivocating key)
 * fall back to `ts`, then to the bytes, so every node picks the same one.
 */
export function compareMeshRecords(
  a: MeshRecord,
  b: MeshRecord,
  aBytes: Uint8Array,
  bBytes: Uint8Array,
): number {
  if (a.seq !== b.seq) return a.seq - b.seq
  if (a.ts !== b.ts) return a.ts - b.ts
  return compareBytes(aBytes, bBytes)
}

/** kad-dht selector for the `/mesh/` namespace: the index of the best record; invalid ones never win. */
export function selectMeshRecord(_key: Uint8Array, records: Uint8Array[]): number {
  let best: { index: number; record: MeshRecord; bytes: Uint8Array } | undefined
  for (const [index, bytes] of records.entries()) {
    let record: MeshRecord
    try {
      record = parseMeshRecord(bytes)
    } catch {
      continue
    }
    if (best === undefined || compareMeshRecords(record, best.record, bytes, best.bytes) > 0) {
      best = { index, record, bytes }
    }
  }
  return best?.index ?? 0
}

function checkShape(value: unknown): MeshRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequestError('mesh record is not a JSON object')
  }
  const r = value as Record<string, unknown>
  const unknown = Object.keys(r).filter((k) => !(RECORD_FIELDS as readonly string[]).includes(k))
  if (unknown.length > 0) throw new BadRequestError('mesh record has unknown fields', { fields: unknown })
  const fail = (field: string, why: string): never => {
    throw new BadRequestError(`mesh record field ${field} ${why}`, { field })
  }
  if (r.v !== 1) fail('v', 'must be 1')
  if (!isDidKey(r.did)) fail('did', 'must be an Ed25519 did:key')
  if (typeof r.peerId !== 'string' || r.peerId.length > 128) fail('peerId', 'must be a peer id string')
  if (!isShortString(r.name, MAX_NAME)) fail('name', `must be a string of at most ${MAX_NAME} characters`)
  if (!isShortString(r.version, MAX_VERSION))
    fail('version', `must be a string of at most ${MAX_VERSION} characters`)
  if (!isStringList(r.multiaddrs, MAX_MULTIADDR)) fail('multiaddrs', 'must be a short list of short strings')
  for (const addr of r.multiaddrs as string[]) {
    try {
      multiaddr(addr)
    } catch {
      fail('multiaddrs', `holds an invalid multiaddr ${JSON.stringify(addr.slice(0, 64))}`)
    }
  }
  if (!isStringList(r.protocolVersions, MAX_PROTOCOL)) {
    fail('protocolVersions', 'must be a short list of short strings')
  }
  for (const field of ['members', 'bots', 'rooms', 'ts'] as const) {
    if (!isCount(r[field])) fail(field, 'must be a non-negative integer')
  }
  if (!isCount(r.seq) || r.seq < 1) fail('seq', 'must be a positive integer')
  if (typeof r.signature !== 'string') fail('signature', 'must be a string')
  // reachable by URL (SPEC §10): the profile's fields, each bounded
  const profile = pickMeshProfile(r)
  if (Object.keys(profile).length > 0 && !validateProfile(profile)) {
    const first = validateProfile.errors?.[0]
    fail(`${first?.instancePath || 'profile'}`.replace(/^\//, ''), first?.message ?? 'is invalid')
  }
  if (r.identity !== undefined || r.rotations !== undefined) {
    if (!isDidKey(r.identity)) fail('identity', 'must be an Ed25519 did:key')
    if (!Array.isArray(r.rotations) || r.rotations.length === 0 || r.rotations.length > MAX_ROTATION_CHAIN) {
      fail('rotations', `must be 1–${MAX_ROTATION_CHAIN} rotation records`)
    }
    // Far-future stamps are the validator's concern (MESH_CLOCK_SKEW); here only the chain.
    const chain = verifyRotationChain(r.rotations, {
      identity: r.identity as string,
      now: Number.MAX_SAFE_INTEGER,
    })
    if (!chain.keys.includes(r.did as string)) {
      throw new SignatureMismatchError('mesh record did is not a key of its rotation chain', { did: r.did })
    }
  }
  return r as unknown as MeshRecord
}

// issue 15 (cold start): precompiled, since a node's first discovery round signs its record before it is ready
const validateProfile = lazyValidator<MeshProfile>(meshProfileSchema, precompiled.meshProfile)

function isShortString(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length <= max
}

function isStringList(value: unknown, max: number): value is string[] {
  return (
    Array.isArray(value) &&
    value.length <= MESH_RECORD_MAX_MULTIADDRS &&
    value.every((item) => isShortString(item, max))
  )
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}
