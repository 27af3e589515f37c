import type * as YT from 'yjs'
import { Y } from './lazy-yjs.ts' // issue 15: loaded on first use
import { nodePart } from './node-part.ts' // issue 15, alpha15
import type { Sealed } from './own-seals.ts'
import type { ClientBinding } from './room-entries.ts'
import type { ValidationResult } from './validate-update.ts'
import { BATCH_BYTES } from './write-turn.ts'

/**
 * Issue 15 (wsturn15): the updates y-websocket clients send in one turn of the event loop
 * (a connection's frames of one read; several connections' too), applied together at its
 * end (`setImmediate`, as the node's own writes, write-turn.ts). Strictly in arrival order,
 * each is validated against the room as the ones before it left it, inside one open
 * transaction: a good one is applied there at once and the ids of its writers bound (so
 * that the next update is checked against them); a refused one is refused alone, its
 * sender told, the room untouched by it. At the end of the transaction the node seals
 * everything the turn's clients wrote under one batch record, one signature
 * (own-seals.ts `sealWritten`), so the room's observers (the log: one row; the hub; the
 * replicator) see one update and never an unsealed entry.
 *
 * Each update resolves once its transaction is durable. Each connection's last good update
 * of the transaction carries its answer: the transaction's update less the structs of
 * that connection's own writers (the node's bindings and seals, and the other
 * connections' writes, which the hub does not send to a connection of the turn).
 *
 * A transaction closes at ≈ BATCH_BYTES (the next update opens another): what the peers
 * get stays well under their update cap. The node's own writes and peers' updates of the
 * same turn apply before or after the whole turn, each checked against the room as it is
 * then: no update is validated against a state it is not applied to.
 */

export type ClientSender = { kind: 'client'; did: string; mesh: string }

export interface ClientAnswer {
  /** For the sending client: what it does not hold of its transaction (the node's part, other clients'). */
  nodeUpdate?: Uint8Array
}

/** The origin of a client turn's transaction: `connections` get their answers, not the hub's broadcast. */
export interface ClientTurnOrigin {
  source: 'client'
  connections: Set<unknown>
}

type Result = ValidationResult & ClientAnswer

/** What a turn needs from its room. */
export interface ClientTurnHost {
  readonly doc: YT.Doc
  /** The mesh whose clients these are (their bindings name it). */
  readonly ownMesh: string
  readonly room: string
  /** Throws when the room can take no write (unloaded, failed). */
  assertHealthy(): void
  validate(update: Uint8Array, sender: ClientSender): ValidationResult
  rejected(error: NonNullable<ValidationResult['error']>, sender: ClientSender): void
  /** Puts a binding (its seal follows in `seal`). */
  put(map: 'clients', key: string, value: ClientBinding): void
  /** Seals what the transaction wrote; called inside it. */
  seal(written: Sealed): void
  /** Throws (and fails the room) when Yjs kept part of an update pending. */
  assertWhole(): void
  /** Resolves when the last transaction is durable. */
  durable(): Promise<void>
}

interface Queued {
  update: Uint8Array
  sender: ClientSender
  connection: unknown
  resolve: (r: Result) => void
  reject: (err: unknown) => void
}

/** Estimated bytes of an applied update in the transaction: its own and its seals'. */
const SEAL_BYTES = 256

export class ClientTurn {
  readonly #host: ClientTurnHost
  #queued: Queued[] = []

  constructor(host: ClientTurnHost) {
    this.#host = host
  }

  /** Updates waiting for the end of the turn. */
  get pending(): number {
    return this.#queued.length
  }

  add(update: Uint8Array, sender: ClientSender, connection: unknown): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      if (this.#queued.push({ update, sender, connection, resolve, reject }) === 1)
        setImmediate(() => this.#run())
    })
  }

  /**
   * Applies the updates given so far now, not at the end of the turn: for a node's write that
   * dates itself after the room's entries (room-roles.ts `endOne`), which must see them.
   */
  run(): void {
    if (this.#queued.length > 0) this.#run()
  }

  #run(): void {
    const queued = this.#queued
    this.#queued = []
    let next = 0
    try {
      while (next < queued.length) {
        this.#host.assertHealthy()
        const done = this.#transaction(queued, next)
        next = done.next
        if (done.failed !== undefined) throw done.failed.err
      }
    } catch (err) {
      // Not expected past the health check (validation refuses, never throws): the update that
      // threw and the rest fail; those already applied were sealed and are answered as usual
      // (refused ones stay answered).
      for (const q of queued.slice(next)) q.reject(err)
    }
  }

  /**
   * Applies updates from `from` in one transaction; returns where the next one starts, and
   * what one of them threw (that one is `next`: it and the rest are not applied).
   */
  #transaction(queued: Queued[], from: number): { next: number; failed: { err: unknown } | undefined } {
    const host = this.#host
    const doc = host.doc
    const origin: ClientTurnOrigin = { source: 'client', connections: new Set() }
    const applied: Array<{ q: Queued; result: Result; clients: number[] }> = []
    const written: Sealed = []
    let bytes = 0
    let next = from
    let transaction: [Uint8Array, YT.Transaction] | undefined
    let failed: { err: unknown } | undefined
    const listener = (u: Uint8Array, o: unknown, _: unknown, tr: YT.Transaction) => {
      if (o === origin) transaction = [u, tr]
    }
    doc.on('update', listener)
    try {
      doc.transact((tr) => {
        try {
          for (; next < queued.length; next++) {
            const q = queued[next] as Queued
            const result = host.validate(q.update, q.sender)
            if (result.error !== undefined) {
              host.rejected(result.error, q.sender)
              q.resolve(result)
              continue
            }
            const ok = result.ok
            const cost = q.update.byteLength + SEAL_BYTES * (ok.entries.length + ok.clients.length)
            // Past the cap: this update opens the next transaction (validated again there, unchanged).
            if (applied.length > 0 && bytes + cost > BATCH_BYTES) break
            // Part refused: what is applied is the rest, with a hole where each refused entry was.
            if (ok.refused !== undefined) host.rejected(ok.refused, q.sender)
            if (ok.empty) {
              q.resolve(result)
              continue
            }
            Y.applyUpdate(doc, ok.update ?? q.update)
            for (const client of ok.clients) {
              const key = String(client)
              if (doc.getMap('clients').has(key)) continue
              const binding: ClientBinding = { mesh: host.ownMesh, room: host.room, did: q.sender.did }
              host.put('clients', key, binding)
              written.push({ map: 'clients', key, value: binding })
            }
            for (const e of ok.entries) written.push(e)
            applied.push({ q, result, clients: ok.clients })
            origin.connections.add(q.connection ?? q)
            bytes += cost
          }
        } catch (err) {
          // Not expected (validation refuses, never throws). What was applied before the throw
          // is in this transaction all the same: it is sealed below, so that the room never
          // holds (nor logs, nor relays) an unsealed entry; `next`, the one that threw, and the
          // rest are failed by the caller.
          failed = { err }
        }
        // applyUpdate marks the shared transaction remote; our own seals follow in it, and
        // Yjs would take them for another client using our id and switch ids.
        tr.local = true
        if (written.length > 0) host.seal(written)
      }, origin)
    } finally {
      doc.off('update', listener)
    }
    try {
      host.assertWhole()
    } catch (err) {
      for (const { q } of applied) q.reject(err)
      return { next, failed }
    }
    answer(applied, transaction, host.durable())
    return { next, failed }
  }
}

/** Resolves each applied update once `durable`; each connection's last one with its answer. */
function answer(
  applied: Array<{ q: Queued; result: Result; clients: number[] }>,
  transaction: [Uint8Array, YT.Transaction] | undefined,
  durable: Promise<void>,
): void {
  const last = new Map<unknown, { result: Result; clients: Set<number> }>()
  for (const a of applied) {
    const key = a.q.connection ?? a.q
    const group = last.get(key)
    last.set(key, { result: a.result, clients: new Set([...(group?.clients ?? []), ...a.clients]) })
  }
  const answers = new Map<Result, Uint8Array>()
  for (const { result, clients } of last.values()) answers.set(result, nodePart(transaction, clients))
  for (const { q, result } of applied) {
    const nodeUpdate = answers.get(result)
    durable.then(() => q.resolve(nodeUpdate === undefined ? result : { ...result, nodeUpdate }), q.reject)
  }
}
