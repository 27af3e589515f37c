import type * as YT from 'yjs'
import { Y } from './lazy-yjs.ts' // issue 15: loaded on first use

/**
 * Issue 15 (p99): what a y-websocket client's transaction added beyond the client's own
 * update (the node's bindings and seals, under the node's id `own`), for that client alone:
 * the transaction's update without the structs of every other client whose clock it moved,
 * in O(update) (encoding it from the document would rebuild the delete set of the whole room).
 * Issue 15 (alpha15): those clocks are read off the transaction, not parsed from the update
 * the client sent (its structs are the only others a client's transaction holds).
 */
export function nodePart(transaction: [Uint8Array, YT.Transaction] | undefined, own: number): Uint8Array {
  if (transaction === undefined) return new Uint8Array([0, 0]) // an empty update
  const [update, { beforeState, afterState }] = transaction
  const moved = new Map<number, number>()
  for (const [client, clock] of afterState) {
    if (client !== own && clock > (beforeState.get(client) ?? 0)) moved.set(client, clock)
  }
  return Y.diffUpdate(update, Y.encodeStateVector(moved))
}
