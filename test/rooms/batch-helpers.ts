/**
 * Batch-seal updates for the tests of batch records (seal-batch.test.ts) and of turn
 * trees (seal-tree.test.ts): messages, records a room holds, crafted updates under one
 * batch record, tweaked as a hostile peer would.
 */
import * as Y from 'yjs'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { contentId, type MessageEntry, type Room, type RoomOrigin, sealKey } from '../../src/rooms/index.ts'
import {
  type BatchSeal,
  batchLeaf,
  makeBatch,
  type SealBatch,
  sealedBatch,
} from '../../src/rooms/seal-batch.ts'
import { signLeaves } from '../../src/rooms/seal-tree.ts'
import { alice, craft, meshA, meshC } from './helpers.ts'
export const fromA = { kind: 'peer', meshDid: meshA.did } as const
export const fromC = { kind: 'peer', meshDid: meshC.did } as const

export function message(room: string, body: string, author = alice.did, ts = Date.now()): MessageEntry {
  return { v: 1, room, author, authorMesh: meshA.did, body, mentions: [], ts }
}

export const put = (m: MessageEntry) => [{ map: 'messages' as const, key: contentId(m), value: m }]

/** The batch records a room holds. */
export function records(room: Room): Array<[string, SealBatch]> {
  return [...room.doc.getMap('seals').entries()].filter(([k]) => k.startsWith('batch/')) as Array<
    [string, SealBatch]
  >
}

/** The local updates a room emits (what its links and the log are handed). */
export function capture(room: Room): Uint8Array[] {
  const sent: Uint8Array[] = []
  room.doc.on('update', (u: Uint8Array, origin: RoomOrigin | null) => {
    if (origin?.source === 'local') sent.push(u)
  })
  return sent
}

export type Tweak = {
  record?: (r: SealBatch) => SealBatch
  seal?: (s: BatchSeal, i: number) => BatchSeal
  room?: string
  /** Record written after its entries, in a second transaction. */
  recordLast?: boolean
  /** Signs with this key (a later key of `key`'s mesh, or a stranger's). */
  signer?: Ed25519KeyPair
  /** posts15: the record shares a tree (one signature) with another room's record. */
  tree?: boolean
}

/** `makeBatch`, but the record a leaf of a tree whose other leaf is another room's (posts15). */
export function treeBatch(
  signer: Ed25519KeyPair,
  room: string,
  sealed: Parameters<typeof makeBatch>[2],
  mesh: string,
) {
  const leaf = batchLeaf(room, sealed, mesh, signer.did)
  const other = message('another-room-0001', 'elsewhere')
  const elsewhere = batchLeaf('another-room-0001', put(other), mesh, signer.did)
  const [signed] = signLeaves(signer, [leaf.id, elsewhere.id], mesh)
  return sealedBatch(leaf, signed as NonNullable<typeof signed>, mesh, signer.did)
}

/**
 * An update by a fresh client id `client` of `key`'s mesh: its binding and `msgs`, all
 * under one batch record (made by makeBatch, then tweaked), as a node's turn writes them.
 */
export function batchUpdate(
  room: Room,
  key: Ed25519KeyPair,
  msgs: MessageEntry[],
  client: number,
  tweak: Tweak = {},
) {
  const binding = { mesh: key.did, room: room.id }
  const sealed = [
    { map: 'clients' as const, key: String(client), value: binding },
    ...msgs.map((m) => ({ map: 'messages' as const, key: contentId(m), value: m })),
  ]
  const made = (tweak.tree ? treeBatch : makeBatch)(
    tweak.signer ?? key,
    tweak.room ?? room.id,
    sealed,
    key.did,
  )
  const record = tweak.record ? tweak.record(made.record) : made.record
  const parts: Uint8Array[] = []
  const full = craft(
    room,
    (doc) => {
      const before = Y.encodeStateVector(doc)
      const writeRecord = () => doc.getMap('seals').set(made.recordKey, record)
      doc.transact(() => {
        if (!tweak.recordLast) writeRecord()
        sealed.forEach((e, i) => {
          doc.getMap(e.map).set(e.key, e.value)
          const seal = made.seals[i] as BatchSeal
          doc.getMap('seals').set(sealKey(e.map, e.key), tweak.seal ? tweak.seal(seal, i) : seal)
        })
      })
      parts.push(Y.encodeStateAsUpdate(doc, before))
      if (tweak.recordLast) doc.transact(writeRecord)
    },
    client,
  )
  return { full, entriesOnly: parts[0] as Uint8Array, recordKey: made.recordKey, record }
}
