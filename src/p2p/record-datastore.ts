import type { AbortOptions } from '@libp2p/interface'
import { Record as DhtRecord } from '@libp2p/kad-dht'
import { MemoryDatastore } from 'datastore-core'
import { Key } from 'interface-datastore'
import { equals } from 'uint8arrays/equals'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { ReplayError, TooLargeError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { Sublevel } from '../store/index.ts'

/** A kad-dht selector that answers synchronously, so a guarded put is one atomic step. */
export type SyncSelectFn = (key: Uint8Array, records: Uint8Array[]) => number

export interface RecordGuardInit {
  /** Selectors by key namespace (the `mesh` of `/mesh/<did>`); other namespaces pass unguarded. */
  selectors: Record<string, SyncSelectFn>
  /** Where kad-dht keeps records: its `datastorePrefix` + `/record/`. Default `/dht/record/`. */
  recordPrefix?: string
  /**
   * Where the DHT's keys (records, provider records: everything under `/dht/`) are kept
   * across restarts, values base64url; default none (memory only). Call `load()` before
   * libp2p starts and `flush()` after it stops.
   */
  persist?: Sublevel<string>
  /** Told about failed writes to `persist`. */
  logger?: Logger
  /**
   * DHT records held at most: a put under a new key beyond it is refused (MESH_TOO_LARGE),
   * so peers cannot fill memory and disk with records; default 20 000.
   */
  maxRecords?: number
}

const PERSISTED_PREFIX = '/dht/'

/**
 * The libp2p datastore of a mesh node: in memory, but a DHT record is only ever
 * replaced by one its namespace's selector prefers.
 *
 * Why: kad-dht's PUT_VALUE handler runs the validator on the incoming record alone and
 * then overwrites whatever it held, so anyone can replay an older, validly signed
 * record (lower seq) over a newer one. Every record write — a peer's PUT_VALUE, our
 * own put, get's self-correction — goes through `datastore.put`, so refusing here
 * closes all of them; the PUT_VALUE handler turns the throw into a failed request.
 */
export class RecordGuardDatastore extends MemoryDatastore {
  readonly #selectors: Record<string, SyncSelectFn>
  readonly #recordPrefix: string
  readonly #listeners = new Set<(key: Key) => void>()
  readonly #persist: Sublevel<string> | undefined
  readonly #logger: Logger | undefined
  readonly #maxRecords: number
  #records = 0
  /** Writes to `persist`, in the order the memory saw them. */
  #persisting: Promise<void> = Promise.resolve()

  constructor(init: RecordGuardInit) {
    super()
    this.#selectors = init.selectors
    this.#recordPrefix = init.recordPrefix ?? '/dht/record/'
    this.#persist = init.persist
    this.#logger = init.logger
    this.#maxRecords = init.maxRecords ?? 20_000
  }

  /** Reads what `persist` kept into memory; returns how many keys. */
  async load(): Promise<number> {
    if (this.#persist === undefined) return 0
    let loaded = 0
    for await (const [key, value] of this.#persist.iterator()) {
      const k = new Key(key)
      if (!this.#holds(k) && k.toString().startsWith(this.#recordPrefix)) this.#records++
      super.put(k, uint8ArrayFromString(value, 'base64url'))
      loaded++
    }
    return loaded
  }

  /** Resolves once every write so far reached `persist`. */
  async flush(): Promise<void> {
    await this.#persisting
  }

  /** DHT records held now. */
  get records(): number {
    return this.#records
  }

  override put(key: Key, val: Uint8Array, options?: AbortOptions): Key | Promise<Key> {
    const name = key.toString()
    const isRecord = name.startsWith(this.#recordPrefix)
    const isNew = !this.#holds(key)
    try {
      // No await between reading the stored record and writing the new one: the check
      // and the write cannot interleave with another put.
      if (isRecord && !isNew) this.#refuseWorse(key, val)
      if (isRecord && isNew && this.#records >= this.#maxRecords) {
        throw new TooLargeError(`this node holds ${this.#records} DHT records, its limit`, {
          limit: this.#maxRecords,
        })
      }
    } catch (err) {
      return Promise.reject(err)
    }
    const stored = super.put(key, val, options)
    if (isRecord && isNew) this.#records++
    if (name.startsWith(PERSISTED_PREFIX)) this.#write(name, val)
    for (const listener of this.#listeners) {
      try {
        listener(key)
      } catch {
        // a listener's failure is its own; the write is done
      }
    }
    return stored
  }

  /**
   * Calls `listener` (synchronously, after the write) with the key of every put that
   * went through: a provider record a peer added, a DHT record it stored. Returns the
   * function that removes the listener.
   */
  override delete(key: Key, options?: AbortOptions): void | Promise<void> {
    const name = key.toString()
    if (name.startsWith(this.#recordPrefix) && this.#holds(key)) this.#records--
    super.delete(key, options)
    if (name.startsWith(PERSISTED_PREFIX)) this.#write(name, undefined)
  }

  /** MemoryDatastore answers synchronously. */
  #holds(key: Key): boolean {
    return super.has(key) as boolean
  }

  #write(name: string, value: Uint8Array | undefined): void {
    const persist = this.#persist
    if (persist === undefined) return
    this.#persisting = this.#persisting
      .then(() =>
        value === undefined ? persist.del(name) : persist.put(name, uint8ArrayToString(value, 'base64url')),
      )
      .catch((err: unknown) => {
        // memory keeps it; the next restart may miss it, and the DHT's republish heals that
        this.#logger?.warn(
          { event: 'dht.persist_failed', key: name, err },
          'could not keep a DHT key on disk',
        )
      })
  }

  onPut(listener: (key: Key) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
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
