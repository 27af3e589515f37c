import type * as YT from 'yjs'
import { Y } from './lazy-yjs.ts' // issue 15: loaded on first use
import type { RoomOrigin } from './room.ts'

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
 */
export function applyAsSent(
  doc: YT.Doc,
  update: Uint8Array,
  origin: RoomOrigin,
  asSent: boolean | undefined,
): void {
  const observed = doc as unknown as Observed
  const observers = observed._observers
  if (asSent !== true || !observers.has('update') || observed._transaction !== null) {
    Y.applyUpdate(doc, update, origin)
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
    doc.transact((tr) => {
      mine = tr
      Y.applyUpdate(doc, update)
    }, origin)
  } finally {
    doc.off('afterTransaction', other)
    doc.off('afterTransactionCleanup', cleaned)
    restore()
  }
}

/** What of a Y.Doc this reads beyond its typed API (lib0 Observable, Yjs Doc). */
interface Observed {
  _observers: Map<string, Set<(...args: unknown[]) => void>>
  _transaction: unknown
}
