import type * as YT from 'yjs'
import { Y } from './lazy-yjs.ts' // issue 15: loaded on first use

/**
 * Issue 15 (p99): what a y-websocket client's transaction added beyond the client's own
 * update (the node's bindings and seals), for that client alone: the transaction's update
 * without the structs of the client's own writers, in O(update) (encoding it from the
 * document would rebuild the delete set of the whole room).
 * Issue 15 (alpha15): those clocks are read off the transaction, not parsed from the update
 * the client sent.
 * Issue 15 (wsturn15): a transaction may hold several connections' updates of one turn
 * (client-turn.ts); `writers` are the ids of this connection's, and what the others wrote
 * is part of its answer (the hub does not broadcast the transaction to them).
 */
export function nodePart(
  transaction: [Uint8Array, YT.Transaction] | undefined,
  writers: Iterable<number>,
): Uint8Array {
  if (transaction === undefined) return new Uint8Array([0, 0]) // an empty update
  const [update, { afterState }] = transaction
  const held = new Map<number, number>()
  for (const client of writers) {
    const clock = afterState.get(client)
    if (clock !== undefined) held.set(client, clock)
  }
  return Y.diffUpdate(update, Y.encodeStateVector(held))
}
