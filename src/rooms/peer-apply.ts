import type * as YT from 'yjs'
import { Y } from './lazy-yjs.ts' // issue 15: loaded on first use
import type { RoomOrigin } from './room.ts'
import type { ReadUpdate } from './update-structs.ts'

/**
 * Issue 15 (b6peer): a peer's update applied without Yjs encoding it again.
 *
 * Yjs encodes each transaction's update for its `update` listeners (the room's log row, the
 * links to other peers, the y-websocket clients): for a peer's update that is one more pass
 * over every struct, strings and JSON values written out again (≈ a tenth of the peer path's
 * main thread). When validation found the received bytes to hold exactly what applying them
 * adds (`ValidatedUpdate.asSent`: no struct the room had already, no delete set, not
 * rewritten by a salvage; readStructs proved every struct new and applicable whole, so none
 * stays pending), the transaction's update is the same structs: the listeners are given the
 * bytes received instead — at the point where Yjs would give them its own (after
 * `afterTransactionCleanup`, before any transaction the listeners or observers start), so
 * the room indexes and logs in the same order as before. Any other update, or a call inside
 * another transaction, is applied as Yjs does.
 *
 * Yjs offers no switch for this: it encodes when the doc has `update` listeners (lib0's
 * `_observers`), so for this one transaction that question is answered no, and answered
 * truly again before any other transaction is cleaned up (test/rooms/peer-apply.test.ts
 * holds Yjs to this).
 * Bytes past the update's end, which every Yjs reader ignores, are carried as received.
 *
 * Nor is it decoded again (durable15): `asSent` is then the update's structs as validation
 * read them (update-structs.ts readStructs), and they are integrated as they are, in the order
 * and the remote transaction Yjs's `applyUpdate` would integrate the same structs decoded
 * once more (≈ a sixth of the peer path's main thread: every string and JSON value read twice).
 */
export function applyAsSent(
  doc: YT.Doc,
  update: Uint8Array,
  origin: RoomOrigin,
  asSent: NewStructs | undefined,
): void {
  const observed = doc as unknown as Observed
  const observers = observed._observers
  if (asSent === undefined || observed._transaction !== null || !integrable(doc, asSent)) {
    Y.applyUpdate(doc, update, origin)
    return
  }
  if (!observers.has('update')) {
    Y.transact(doc, (tr) => integrate(tr, asSent), origin, false)
    return
  }
  let mine: YT.Transaction | undefined
  // Yjs asks `_observers.has('update')` before it encodes: answered no for this transaction only
  // (the listeners stay where they are, so one added or removed meanwhile is added or removed).
  const hidden = observers as unknown as { has?: unknown }
  hidden.has = (name: string) => name !== 'update' && Map.prototype.has.call(observers, name)
  let aside = true
  const restore = () => {
    if (aside) delete hidden.has
    aside = false
  }
  // Another transaction (started by a listener or an observer) gets Yjs's own encoding.
  const other = (tr: YT.Transaction) => {
    if (tr !== mine) restore()
  }
  const cleaned = (tr: YT.Transaction) => {
    if (tr !== mine) return
    // Where and how Yjs would emit its own encoding (it has content: validation found new structs).
    for (const listener of [...(observers.get('update') ?? [])]) listener(update, origin, doc, tr)
  }
  doc.on('afterTransaction', other)
  doc.on('afterTransactionCleanup', cleaned)
  try {
    Y.transact(
      doc,
      (tr) => {
        mine = tr
        integrate(tr, asSent)
      },
      origin,
      false, // a remote transaction, as Yjs's applyUpdate makes it
    )
  } finally {
    doc.off('afterTransaction', other)
    doc.off('afterTransactionCleanup', cleaned)
    restore()
  }
}

/** An update's new structs as validation read them, per client in clock order (update-structs.ts). */
type NewStructs = ReadUpdate['byClient']

/**
 * Whether `structs` can be integrated as they are, as Yjs's `applyUpdate` would integrate the
 * same structs decoded again (durable15): nothing pending in the store (else Yjs would retry
 * it), each client's structs contiguous from the room's state, each item a root map's entry
 * without origins, read from bytes and never integrated (its parent still the map's name).
 * Validation (readStructs) proved all this of the update; asked again here, as it is cheap and
 * a struct integrated out of these bounds would corrupt the document. No: Yjs decodes the bytes.
 */
function integrable(doc: YT.Doc, structs: NewStructs): boolean {
  if (doc.store.pendingStructs !== null || doc.store.pendingDs !== null) return false
  for (const [client, list] of structs) {
    let clock = Y.getState(doc.store, client)
    for (const s of list) {
      if (s instanceof Y.Item) {
        if (s.id.client !== client || s.id.clock !== clock || s.length !== 1) return false
        if (s.origin !== null || s.rightOrigin !== null || s.left !== null || s.right !== null) return false
        if (typeof s.parent !== 'string' || !(doc.share.get(s.parent) instanceof Y.Map)) return false
        if (typeof s.parentSub !== 'string') return false
      } else if (s.client !== client || s.clock !== clock || !(s.length > 0)) return false
      clock += s.length
    }
  }
  return true
}

/**
 * Yjs's `integrateStructs` for structs `integrable` found fit: the clients from the highest
 * id down, each one's structs in clock order, each item given its map and integrated (with no
 * origins and a key new to its map it is that map's value), each hole as a GC struct.
 */
function integrate(tr: YT.Transaction, structs: NewStructs): void {
  tr.local = false
  const doc = tr.doc
  for (const client of [...structs.keys()].sort((a, b) => b - a)) {
    for (const s of structs.get(client) ?? []) {
      if (s instanceof Y.Item) {
        s.parent = doc.share.get(s.parent as unknown as string) as YT.AbstractType<unknown>
        s.integrate(tr, 0)
      } else new Y.GC(Y.createID(s.client, s.clock), s.length).integrate(tr, 0)
    }
  }
}

/** What of a Y.Doc this reads beyond its typed API (lib0 Observable, Yjs Doc). */
interface Observed {
  _observers: Map<string, Set<(...args: unknown[]) => void>>
  _transaction: unknown
}
