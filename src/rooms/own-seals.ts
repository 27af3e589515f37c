import type * as YT from 'yjs'
import type { Ed25519KeyPair } from '../identity/index.ts'
import {
  type ClientBinding,
  contentAddressed,
  contentId,
  makeSeal,
  type Seal,
  type SealedMapName,
  sealKey,
  sealPayloadText,
} from './room-entries.ts'
import {
  BATCH_MIN_ENTRIES,
  type BatchLeaf,
  batchLeaf,
  MAX_BATCH_ENTRIES,
  makeBatch,
  sealedBatch,
} from './seal-batch.ts'
import { type LeafSignature, leafOf } from './seal-tree.ts'

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

/**
 * A transaction's leaf in a turn's tree (write-turn.ts): a batch record's, or a lone
 * entry's seal payload hashed (no record: its seal carries the tree).
 */
export interface TurnLeaf {
  id: string
  signer: string
  sealed: Sealed
  batch?: BatchLeaf
  /** The lone entry's content id. */
  hash?: string
}

export interface TreeSeal {
  leaf: TurnLeaf
  signed: LeafSignature
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

  /** `entries`' leaf for a tree signed by `signer` (undefined: nothing to seal, or more than one record may list). */
  leaf(entries: Sealed, signer: string): TurnLeaf | undefined {
    const sealed = this.sealed(entries)
    const { room, ownMesh } = this.#c
    const mesh = ownMesh === signer ? undefined : ownMesh
    const lone = sealed.length === 1 ? sealed[0] : undefined
    if (lone !== undefined) {
      const hash = contentAddressed(lone.map) ? lone.key : contentId(lone.value)
      const id = leafOf(sealPayloadText(room, lone.map, lone.key, hash, mesh))
      return { id, signer, sealed, hash }
    }
    // Nothing new (a write of entries the room holds) seals nothing, as on its own.
    if (sealed.length === 0 || sealed.length > MAX_BATCH_ENTRIES) return undefined
    const batch = batchLeaf(room, sealed, ownMesh, signer)
    return { id: batch.id, signer, sealed, batch }
  }

  /** Puts and seals entries (and this replica's binding, if new): ≥ 2 under one batch record. */
  sealAll(entries: Sealed, tree?: TreeSeal): void {
    if (tree !== undefined) {
      const { leaf, signed } = tree
      const { ownMesh } = this.#c
      if (leaf.batch !== undefined) {
        const { recordKey, record, seals } = sealedBatch(leaf.batch, signed, ownMesh, leaf.signer)
        this.#putBatch(recordKey, record, leaf.sealed, seals, true)
        return
      }
      const lone = leaf.sealed[0] as Sealed[number]
      const signer = ownMesh === leaf.signer ? {} : { key: leaf.signer }
      const seal: Seal = { mesh: ownMesh, ...signer, hash: leaf.hash as string, ...signed }
      this.put(lone.map, lone.key, lone.value)
      this.put('seals', sealKey(lone.map, lone.key), seal)
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
    this.#sealBatches(sealed, true)
  }

  /**
   * Issue 15 (wsturn15): seals what clients' updates of one turn wrote in the transaction
   * being committed: their entries (put by the clients) and the bindings of their ids (put
   * as each update applied, so that the next one is checked against them), with this
   * replica's binding if new: ≥ 2 under one batch record (one signature), as `sealAll`.
   */
  sealWritten(written: Sealed): void {
    const sealed = this.sealed(written)
    if (sealed.length >= BATCH_MIN_ENTRIES) {
      this.#sealBatches(sealed, false)
      return
    }
    for (const e of sealed) {
      if (!this.#c.doc.getMap(e.map).has(e.key)) this.put(e.map, e.key, e.value)
      this.seal(e.map, e.key, e.value)
    }
  }

  /**
   * One record a MAX_BATCH_ENTRIES (a single write may hold more), each before its entries.
   * `putAll`: put every entry; else only those the room lacks (a client's are its own structs).
   */
  #sealBatches(sealed: Sealed, putAll: boolean): void {
    for (let at = 0; at < sealed.length; at += MAX_BATCH_ENTRIES) {
      const part = sealed.slice(at, at + MAX_BATCH_ENTRIES)
      const { recordKey, record, seals } = makeBatch(this.#c.key(), this.#c.room, part, this.#c.ownMesh)
      this.#putBatch(recordKey, record, part, seals, putAll)
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

  #putBatch(recordKey: string, record: unknown, sealed: Sealed, seals: unknown[], putAll: boolean): void {
    this.put('seals', recordKey, record) // first: the lowest clock, a catch-up chunk has it before its entries
    const doc = this.#c.doc
    sealed.forEach((e, i) => {
      // A client's entry is the client's struct; setting it again would overwrite it.
      if (putAll || !doc.getMap(e.map).has(e.key)) this.put(e.map, e.key, e.value)
      this.put('seals', sealKey(e.map, e.key), seals[i])
    })
  }
}
