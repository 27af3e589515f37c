import type * as YT from 'yjs'
import type { Ed25519KeyPair } from '../identity/index.ts'
import {
  type ClientBinding,
  contentAddressed,
  makeSeal,
  type SealedMapName,
  sealKey,
} from './room-entries.ts'
import {
  BATCH_MIN_ENTRIES,
  type BatchLeaf,
  type LeafSignature,
  MAX_BATCH_ENTRIES,
  makeBatch,
  sealedBatch,
} from './seal-batch.ts'

/**
 * How a room puts and seals the node's own entries into its document (moved out of
 * room.ts, posts15): one seal an entry, a batch record for a transaction of two or more,
 * or a record in a tree whose one signature covers several rooms' records of one turn
 * (write-turn.ts). Called inside the room's transactions.
 */

export interface OwnSealsInit {
  doc: YT.Doc
  room: string
  /** This mesh's identity: the `mesh` of its bindings and seals. */
  ownMesh: string
  /** The nonce this replica's client id is committed with. */
  nonce: string
  /** This mesh's current key (read at each seal: a rotation shows at once). */
  key: () => Ed25519KeyPair
}

export type Sealed = Array<{ map: SealedMapName; key: string; value: unknown }>

/** A record of a turn's tree (write-turn.ts): what it lists, and the tree's signature for it. */
export interface TreeSeal {
  sealed: Sealed
  leaf: BatchLeaf
  signed: LeafSignature
  signer: string
}

export class OwnSeals {
  readonly #c: OwnSealsInit

  constructor(init: OwnSealsInit) {
    this.#c = init
  }

  /** What a transaction writing `entries` seals: this replica's binding first, if new. */
  sealed(entries: Sealed): Sealed {
    const self = String(this.#c.doc.clientID)
    const sealed: Sealed = this.#c.doc.getMap('clients').has(self)
      ? []
      : [{ map: 'clients', key: self, value: this.#selfBinding() }]
    sealed.push(...entries)
    return sealed
  }

  /** Puts and seals entries (and this replica's binding, if new): ≥ 2 under one batch record. */
  sealAll(entries: Sealed, tree?: TreeSeal): void {
    if (tree !== undefined) {
      const { recordKey, record, seals } = sealedBatch(tree.leaf, tree.signed, this.#c.ownMesh, tree.signer)
      this.#putBatch(recordKey, record, tree.sealed, seals)
      return
    }
    const sealed = this.sealed(entries)
    if (sealed.length < BATCH_MIN_ENTRIES) {
      this.bindSelf()
      for (const e of entries) {
        this.put(e.map, e.key, e.value)
        this.seal(e.map, e.key, e.value)
      }
      return
    }
    // One record a MAX_BATCH_ENTRIES (a single write may hold more), each before its entries.
    for (let at = 0; at < sealed.length; at += MAX_BATCH_ENTRIES) {
      const part = sealed.slice(at, at + MAX_BATCH_ENTRIES)
      const { recordKey, record, seals } = makeBatch(this.#c.key(), this.#c.room, part, this.#c.ownMesh)
      this.#putBatch(recordKey, record, part, seals)
    }
  }

  put(map: SealedMapName | 'seals', key: string, value: unknown): void {
    this.#c.doc.getMap(map).set(key, value)
  }

  seal(map: SealedMapName, key: string, value: unknown): void {
    const sk = sealKey(map, key)
    if (this.#c.doc.getMap('seals').has(sk)) return
    // A content-addressed entry's key is its content id (checked for a client's; the node's own
    // writes key them so): the seal reuses it rather than hashing the entry once more.
    const hash = contentAddressed(map) ? key : undefined
    const { key: signer, room, ownMesh } = this.#c
    this.put('seals', sk, makeSeal(signer(), room, map, key, value, ownMesh, hash))
  }

  bindSelf(): void {
    this.bind(String(this.#c.doc.clientID), this.#selfBinding())
  }

  bind(client: string, binding: ClientBinding): void {
    if (this.#c.doc.getMap('clients').has(client)) return
    this.put('clients', client, binding)
    this.seal('clients', client, binding)
  }

  #selfBinding(): ClientBinding {
    return { mesh: this.#c.ownMesh, room: this.#c.room, nonce: this.#c.nonce }
  }

  #putBatch(recordKey: string, record: unknown, sealed: Sealed, seals: unknown[]): void {
    this.put('seals', recordKey, record) // first: the lowest clock, a catch-up chunk has it before its entries
    sealed.forEach((e, i) => {
      this.put(e.map, e.key, e.value)
      this.put('seals', sealKey(e.map, e.key), seals[i])
    })
  }
}
