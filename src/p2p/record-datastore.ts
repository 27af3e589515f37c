import { AsyncLocalStorage } from 'node:async_hooks'
import type { AbortOptions, Startable } from '@libp2p/interface'
import { Record as DhtRecord } from '@libp2p/kad-dht'
import { MemoryDatastore } from 'datastore-core'
import { Key } from 'interface-datastore'
import { equals } from 'uint8arrays/equals'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { BadRequestError, ReplayError } from '../errors.ts'
import { peerIdFromDid } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import type { Sublevel } from '../store/index.ts'
import { KeyQuota, type QuotaEntry, SELF } from './dht-quota.ts'
import { didFromMeshRecordKey, MESH_RECORD_NAMESPACE } from './mesh-record.ts'

/** A kad-dht selector that answers synchronously, so a guarded put is one atomic step. */
export type SyncSelectFn = (key: Uint8Array, records: Uint8Array[]) => number

const HOUR = 60 * 60 * 1000

export interface RecordGuardInit {
  /** Selectors by key namespace (the `mesh` of `/mesh/<did>`); other namespaces pass unguarded. */
  selectors: Record<string, SyncSelectFn>
  /** kad-dht's `datastorePrefix`; records live under `<prefix>/record/`, provider records under `<prefix>/provider/`. Default `/dht`. */
  datastorePrefix?: string
  /**
   * Where the DHT's keys (records, provider records: everything under `/dht/`) are kept
   * across restarts, values base64url; default none (memory only). Call `load()` before
   * libp2p starts and `flush()` after it stops.
   */
  persist?: Sublevel<string>
  /** Told about failed writes to `persist` and about evictions. */
  logger?: Logger
  /** DHT records held at most (all peers together); default 20 000. */
  maxRecords?: number
  /**
   * Bytes of DHT records held at most: a mesh record may be 8 KiB, and 20 000 of those
   * would be 160 MiB; default 32 MiB (a mesh's record is usually under 1 KiB).
   */
  maxRecordBytes?: number
  /**
   * DHT records one peer (the sender of the PUT_VALUE) holds here at most; its next one
   * replaces its own least recently renewed; default 64. A mesh publishes one record
   * (two while it has just rotated its key).
   */
  maxRecordsPerPeer?: number
  /**
   * DHT records per key namespace at most, e.g. `{ pk: 1000 }`; a namespace not listed
   * may fill `maxRecords` if it is `mesh`, and `maxOtherNamespaceRecords` otherwise.
   */
  maxRecordsPerNamespace?: Record<string, number>
  /** DHT records of namespaces other than `mesh` and those listed above; default 1 000. */
  maxOtherNamespaceRecords?: number
  /** Provider records held at most (all CIDs, all peers); default 20 000. */
  maxProviders?: number
  /** CIDs one peer provides here at most; its next replaces its own oldest; default 64 (a mesh provides one). */
  maxProvidersPerPeer?: number
  /** Providers of one CID held at most (the mesh directory's are every mesh): one GET_PROVIDERS answer stays ~100 KB; default 1 000. */
  maxProvidersPerKey?: number
  /**
   * A record is dropped this long after it was received, or after the `ts` its signer
   * stamped (mesh records), whichever is earlier; default 48 h (kad-dht answers no
   * GET_VALUE with an older one either). A mesh re-signs its record every few intervals.
   */
  recordValidityMs?: number
  /** A provider record is dropped this long after it was (re)provided; default 48 h, kad-dht's. */
  providerValidityMs?: number
  /** How often expired records and provider records are swept while started; default 1 h. */
  sweepIntervalMs?: number
  /** This node's peer id: its own records and provider records are never evicted. */
  self?: string
  /**
   * Whether a peer's own single record and provider record are kept when the store is
   * full (the mesh node: the peer is connected); default never.
   */
  isKept?: (peer: string) => boolean
}

/** The limits and validities RecordGuardDatastore applies, with their defaults filled in. */
export const DHT_STORE_DEFAULTS = {
  maxRecords: 20_000,
  maxRecordBytes: 32 * 1024 * 1024,
  maxRecordsPerPeer: 64,
  maxOtherNamespaceRecords: 1_000,
  maxProviders: 20_000,
  maxProvidersPerPeer: 64,
  maxProvidersPerKey: 1_000,
  recordValidityMs: 48 * HOUR,
  providerValidityMs: 48 * HOUR,
  sweepIntervalMs: HOUR,
} as const

const PERSISTED_PREFIX = '/dht/'
/** A persisted record's value is `<base64url>.<holder>`: the peer it is charged to survives a restart. */
const HOLDER_SEPARATOR = '.'

type Space = 'record' | 'provider'

/**
 * The libp2p datastore of a mesh node: in memory (written through to `persist`), and
 * guarding what kad-dht keeps for other peers.
 *
 * - A DHT record is only ever replaced by one its namespace's selector prefers. Why:
 *   kad-dht's PUT_VALUE handler runs the validator on the incoming record alone and
 *   then overwrites whatever it held, so anyone can replay an older, validly signed
 *   record (lower seq) over a newer one. Every record write — a peer's PUT_VALUE, our
 *   own put, get's self-correction — goes through `datastore.put`, so refusing here
 *   closes all of them; the PUT_VALUE handler turns the throw into a failed request.
 * - Records and provider records are two key spaces, each with its quota (KeyQuota):
 *   per peer, per namespace or CID, in total. A record is charged to the peer that sent
 *   the PUT_VALUE — kad-dht does not say who, so host.ts runs kad-dht's stream handler
 *   inside `asSender` — a provider record to its provider (kad-dht only takes a peer's
 *   ADD_PROVIDER for itself). A full space evicts the flooder's keys, not the honest.
 * - Both expire (`recordValidityMs`, `providerValidityMs`): dropped at `load()` and by a
 *   sweep every `sweepIntervalMs` while started (libp2p starts its datastore).
 */
export class RecordGuardDatastore extends MemoryDatastore implements Startable {
  readonly #selectors: Record<string, SyncSelectFn>
  readonly #recordPrefix: string
  readonly #providerPrefix: string
  readonly #listeners = new Set<(key: Key) => void>()
  readonly #persist: Sublevel<string> | undefined
  readonly #logger: Logger | undefined
  readonly #recordValidityMs: number
  readonly #providerValidityMs: number
  readonly #sweepIntervalMs: number
  readonly #sender = new AsyncLocalStorage<string>()
  readonly #records: KeyQuota
  readonly #providers: KeyQuota
  #self: string | undefined
  #isKept: (peer: string) => boolean
  #sweeper: NodeJS.Timeout | undefined
  #evicted = 0
  /** Writes to `persist`, in the order the memory saw them. */
  #persisting: Promise<void> = Promise.resolve()

  constructor(init: RecordGuardInit) {
    super()
    const d = DHT_STORE_DEFAULTS
    const prefix = init.datastorePrefix ?? '/dht'
    this.#selectors = init.selectors
    this.#recordPrefix = `${prefix}/record/`
    this.#providerPrefix = `${prefix}/provider/`
    this.#persist = init.persist
    this.#logger = init.logger
    this.#recordValidityMs = init.recordValidityMs ?? d.recordValidityMs
    this.#providerValidityMs = init.providerValidityMs ?? d.providerValidityMs
    this.#sweepIntervalMs = init.sweepIntervalMs ?? d.sweepIntervalMs
    this.#self = init.self
    this.#isKept = init.isKept ?? (() => false)
    const self = () => this.#self
    const isKept = (peer: string) => this.#isKept(peer)
    const maxRecords = init.maxRecords ?? d.maxRecords
    this.#records = new KeyQuota(
      {
        max: maxRecords,
        maxBytes: init.maxRecordBytes ?? d.maxRecordBytes,
        perHolder: init.maxRecordsPerPeer ?? d.maxRecordsPerPeer,
        perGroup: { [MESH_RECORD_NAMESPACE]: maxRecords, ...init.maxRecordsPerNamespace },
        perOtherGroup: init.maxOtherNamespaceRecords ?? d.maxOtherNamespaceRecords,
      },
      self,
      isKept,
    )
    this.#providers = new KeyQuota(
      {
        max: init.maxProviders ?? d.maxProviders,
        perHolder: init.maxProvidersPerPeer ?? d.maxProvidersPerPeer,
        perOtherGroup: init.maxProvidersPerKey ?? d.maxProvidersPerKey,
      },
      self,
      isKept,
    )
  }

  /** Who this node is and which peers' own keys to keep when full (see RecordGuardInit). */
  protect(self: string, isKept: (peer: string) => boolean): void {
    this.#self = self
    this.#isKept = isKept
  }

  /** Runs `fn` as the handling of a request from `peer`: the records it puts are charged to `peer`. */
  asSender<T>(peer: string, fn: () => T): T {
    return this.#sender.run(peer, fn)
  }

  /**
   * Reads what `persist` kept into memory, dropping what expired meanwhile; returns how
   * many keys. Keys are charged in the order they were last renewed (their expiry), so
   * the least recently renewed are still the first to go.
   */
  async load(now: number = Date.now()): Promise<number> {
    if (this.#persist === undefined) return 0
    const charged: { key: Key; value: Uint8Array; space: Space; entry: QuotaEntry }[] = []
    let loaded = 0
    let dropped = 0
    for await (const [name, stored] of this.#persist.iterator()) {
      const [encoded = '', holder] = stored.split(HOLDER_SEPARATOR)
      const value = uint8ArrayFromString(encoded, 'base64url')
      const key = new Key(name)
      const space = this.#spaceOf(name)
      if (space === undefined) {
        super.put(key, value)
        loaded++
        continue
      }
      const entry = this.#describe(space, name, value, holder, now)
      if (entry === undefined || entry.expiresAt <= now) {
        this.#write(name, undefined)
        dropped++
      } else {
        charged.push({ key, value, space, entry })
      }
    }
    charged.sort((a, b) => a.entry.expiresAt - b.entry.expiresAt)
    for (const { key, value, space, entry } of charged) {
      const name = key.toString()
      const quota = this.#quota(space)
      let victims: string[]
      try {
        victims = quota.makeRoom(name, entry)
      } catch {
        // only kept keys could make room (limits lowered since): this one goes
        this.#write(name, undefined)
        dropped++
        continue
      }
      for (const victim of victims) this.#evict(victim)
      quota.add(name, entry)
      super.put(key, value)
      loaded += 1 - victims.length
    }
    if (dropped > 0) {
      this.#logger?.info(
        { event: 'dht.load_dropped', dropped },
        'expired or over-limit DHT keys dropped at load',
      )
    }
    return loaded
  }

  /** Resolves once every write so far reached `persist`. */
  async flush(): Promise<void> {
    await this.#persisting
  }

  start(): void {
    if (this.#sweeper !== undefined) return
    this.#sweeper = setInterval(() => this.sweep(), this.#sweepIntervalMs)
    this.#sweeper.unref()
  }

  stop(): void {
    clearInterval(this.#sweeper)
    this.#sweeper = undefined
  }

  /** Deletes the records and provider records expired at `now`; returns how many. */
  sweep(now: number = Date.now()): number {
    const expired = [...this.#records.expired(now), ...this.#providers.expired(now)]
    for (const name of expired) this.delete(new Key(name))
    if (expired.length > 0)
      this.#logger?.debug({ event: 'dht.swept', keys: expired.length }, 'expired DHT keys dropped')
    return expired.length
  }

  /** DHT records held now. */
  get records(): number {
    return this.#records.size
  }

  /** Bytes of DHT records held now. */
  get recordBytes(): number {
    return this.#records.bytes
  }

  /** Provider records held now. */
  get providers(): number {
    return this.#providers.size
  }

  /** Keys evicted to make room since this datastore was made. */
  get evicted(): number {
    return this.#evicted
  }

  override put(key: Key, val: Uint8Array, options?: AbortOptions): Key | Promise<Key> {
    const name = key.toString()
    const space = this.#spaceOf(name)
    const isNew = !this.#holds(key)
    let entry: QuotaEntry | undefined
    try {
      // No await between reading the stored record and writing the new one: the check
      // and the write cannot interleave with another put.
      if (space === 'record' && !isNew) this.#refuseWorse(key, val)
      if (space !== undefined) {
        const now = Date.now()
        entry = this.#describe(space, name, val, this.#sender.getStore() ?? SELF, now)
        if (entry === undefined) {
          throw new BadRequestError('a provider record key names no provider', { key: name.slice(0, 160) })
        }
        if (entry.expiresAt <= now) {
          throw new ReplayError('this DHT key has expired already', { key: name.slice(0, 160) })
        }
        for (const victim of this.#quota(space).makeRoom(name, entry)) this.#evict(victim)
      }
    } catch (err) {
      return Promise.reject(err)
    }
    const stored = super.put(key, val, options)
    if (space !== undefined && entry !== undefined) {
      if (isNew) this.#quota(space).add(name, entry)
      else this.#quota(space).rewrite(name, entry.holder, entry.expiresAt, entry.bytes)
    }
    if (name.startsWith(PERSISTED_PREFIX)) {
      const holder = space === 'record' ? this.#records.get(name)?.holder : undefined
      this.#write(name, val, holder)
    }
    // Outside the sender's context: what a listener starts (a lookup that corrects our
    // own copy) is this node's doing, not the peer's.
    this.#sender.exit(() => {
      for (const listener of this.#listeners) {
        try {
          listener(key)
        } catch {
          // a listener's failure is its own; the write is done
        }
      }
    })
    return stored
  }

  override delete(key: Key, options?: AbortOptions): void | Promise<void> {
    const name = key.toString()
    const space = this.#spaceOf(name)
    if (space !== undefined) this.#quota(space).remove(name)
    super.delete(key, options)
    if (name.startsWith(PERSISTED_PREFIX)) this.#write(name, undefined)
  }

  /**
   * Calls `listener` (synchronously, after the write) with the key of every put that
   * went through: a provider record a peer added, a DHT record it stored. Returns the
   * function that removes the listener.
   */
  onPut(listener: (key: Key) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #spaceOf(name: string): Space | undefined {
    if (name.startsWith(this.#recordPrefix)) return 'record'
    if (name.startsWith(this.#providerPrefix)) return 'provider'
    return undefined
  }

  #quota(space: Space): KeyQuota {
    return space === 'record' ? this.#records : this.#providers
  }

  #evict(name: string): void {
    this.delete(new Key(name))
    this.#evicted++
    this.#logger?.debug({ event: 'dht.evicted', key: name.slice(0, 160) }, 'DHT key evicted to make room')
  }

  /**
   * What a key is charged to and when it expires; undefined for a provider key that
   * names no provider. `holder` is who wrote a record (SELF: this node); a record stored
   * before holders were kept (undefined) is charged to its signer.
   */
  #describe(
    space: Space,
    name: string,
    value: Uint8Array,
    holder: string | undefined,
    now: number,
  ): QuotaEntry | undefined {
    if (space === 'provider') {
      const [cid, peer] = name.slice(this.#providerPrefix.length).split('/')
      if (cid === undefined || peer === undefined || peer === '') return undefined
      const time = readVarint(value) ?? now
      return {
        holder: peer,
        group: cid,
        owner: peer,
        expiresAt: time + this.#providerValidityMs,
        bytes: value.byteLength,
      }
    }
    let received = now
    let group = ''
    let owner: string | undefined
    try {
      const record = DhtRecord.deserialize(value)
      received = Math.min(now, record.timeReceived?.getTime() ?? now) || now
      group = new TextDecoder().decode(record.key).split('/')[1] ?? ''
      if (group === MESH_RECORD_NAMESPACE) {
        owner = peerIdFromDid(didFromMeshRecordKey(record.key)).toString()
        const signed = signedTs(record.value)
        if (signed !== undefined) received = Math.min(received, signed)
      }
    } catch {
      // not a record we can read: kad-dht validated what it writes; charge it as it is
    }
    return {
      holder: holder ?? owner ?? SELF,
      group,
      owner,
      expiresAt: received + this.#recordValidityMs,
      bytes: value.byteLength,
    }
  }

  /** MemoryDatastore answers synchronously. */
  #holds(key: Key): boolean {
    return super.has(key) as boolean
  }

  #write(name: string, value: Uint8Array | undefined, holder?: string): void {
    const persist = this.#persist
    if (persist === undefined) return
    const encoded =
      value === undefined
        ? undefined
        : uint8ArrayToString(value, 'base64url') + (holder === undefined ? '' : HOLDER_SEPARATOR + holder)
    this.#persisting = this.#persisting
      .then(() => (encoded === undefined ? persist.del(name) : persist.put(name, encoded)))
      .catch((err: unknown) => {
        // memory keeps it; the next restart may miss it, and the DHT's republish heals that
        this.#logger?.warn(
          { event: 'dht.persist_failed', key: name, err },
          'could not keep a DHT key on disk',
        )
      })
  }

  /** Throws if `val` would replace a stored record the selector prefers; `key` is held. */
  #refuseWorse(key: Key, val: Uint8Array): void {
    // MemoryDatastore answers synchronously; that is what makes check-then-write atomic.
    const stored = this.get(key) as Uint8Array
    let incoming: DhtRecord
    let current: DhtRecord
    try {
      incoming = DhtRecord.deserialize(val)
      current = DhtRecord.deserialize(stored)
    } catch {
      // Not a record we can judge (or a corrupt stored one): kad-dht validated the
      // incoming bytes already, so let the write through.
      return
    }
    const namespace = new TextDecoder().decode(incoming.key).split('/')[1] ?? ''
    const select = this.#selectors[namespace]
    if (select === undefined) return
    if (equals(incoming.value, current.value)) return
    if (select(incoming.key, [current.value, incoming.value]) === 0) {
      throw new ReplayError('a newer record for this key is already stored', { namespace })
    }
  }
}

/** The `ts` a mesh record's signer stamped, read without checking the record (kad-dht did). */
function signedTs(value: Uint8Array): number | undefined {
  try {
    const ts = (JSON.parse(new TextDecoder().decode(value)) as { ts?: unknown }).ts
    return typeof ts === 'number' && Number.isSafeInteger(ts) ? ts : undefined
  } catch {
    return undefined
  }
}

/** kad-dht's provider record value: the time it was provided, ms since the epoch, as an unsigned varint. */
function readVarint(bytes: Uint8Array): number | undefined {
  let value = 0
  let scale = 1
  for (const byte of bytes) {
    value += (byte & 0x7f) * scale
    if ((byte & 0x80) === 0) return Number.isSafeInteger(value) ? value : undefined
    scale *= 128
    if (scale > 2 ** 56) return undefined
  }
  return undefined
}
