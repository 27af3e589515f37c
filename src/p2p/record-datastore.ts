import type { AbortOptions } from '@libp2p/interface'
import { Record as DhtRecord } from '@libp2p/kad-dht'
import { MemoryDatastore } from 'datastore-core'
import type { Key } from 'interface-datastore'
import { equals } from 'uint8arrays/equals'
import { ReplayError } from '../errors.ts'

/** A kad-dht selector that answers synchronously, so a guarded put is one atomic step. */
export type SyncSelectFn = (key: Uint8Array, records: Uint8Array[]) => number

export interface RecordGuardInit {
  /** Selectors by key namespace (the `mesh` of `/mesh/<did>`); other namespaces pass unguarded. */
  selectors: Record<string, SyncSelectFn>
  /** Where kad-dht keeps records: its `datastorePrefix` + `/record/`. Default `/dht/record/`. */
  recordPrefix?: string
}

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

  constructor(init: RecordGuardInit) {
    super()
    this.#selectors = init.selectors
    this.#recordPrefix = init.recordPrefix ?? '/dht/record/'
  }

  override put(key: Key, val: Uint8Array, options?: AbortOptions): Key | Promise<Key> {
    try {
      // No await between reading the stored record and writing the new one: the check
      // and the write cannot interleave with another put.
      if (key.toString().startsWith(this.#recordPrefix)) this.#refuseWorse(key, val)
    } catch (err) {
      return Promise.reject(err)
    }
    const stored = super.put(key, val, options)
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
  onPut(listener: (key: Key) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #refuseWorse(key: Key, val: Uint8Array): void {
    // MemoryDatastore answers synchronously; that is what makes check-then-write atomic.
    if (!(this.has(key) as boolean)) return
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
