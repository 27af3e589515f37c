import type { Ed25519KeyPair } from '../identity/index.ts'
import type { StoreOperation } from '../store/index.ts'
import type { TreeSeal, TurnLeaf } from './own-seals.ts'
import type { Entry, SealedMapName } from './room-entries.ts'
import { MAX_BATCH_ENTRIES } from './seal-batch.ts'
import { signLeaves } from './seal-tree.ts'
import type { NewEntry } from './validate-update.ts'

/**
 * Issue 15 (batch15): the node's own writes of one event-loop turn (`Room.write`), applied
 * together at its end (`setImmediate`: HTTP posts arrive in separate I/O callbacks, a
 * microtask would see one at a time). In call order, each write's new entries are
 * checked against the room plus the turn's earlier writes; a refused write rejects its
 * own caller only. The others go in one transaction (another one past the caps: at most
 * MAX_BATCH_ENTRIES entries, ≈ BATCH_BYTES), sealed under one batch record
 * (seal-batch.ts); every caller resolves once its transaction is durable.
 *
 * Issue 15 (posts15): the turns of every room run in one `setImmediate`, and the last
 * transaction of each room written in it shares one signature with the others sealed by
 * the same key (seal-batch.ts `signLeaves`: a tree of their records, which name no other
 * room): sixteen rooms posted to at once cost one Ed25519 signature a turn, not sixteen.
 * A room alone in its turn seals as before (one seal, or one plain batch record).
 */

export type Write = Array<{ map: SealedMapName; key: string; value: Entry }>

/** What a turn needs from its room. */
export interface TurnHost {
  /** The room's id. */
  readonly room: string
  /** Throws when the room can take no write (unloaded, failed). */
  assertHealthy(): void
  has(map: SealedMapName, key: string): boolean
  /** The mesh that seals the node's writes. */
  readonly sealedBy: string
  /** The key that seals them now. */
  signer(): Ed25519KeyPair
  /** A transaction of `entries`' leaf in a tree signed by `signer` (undefined: too many entries for one). */
  leaf(entries: NewEntry[], signer: string): TurnLeaf | undefined
  /** `checkLocalRules` of `entries`, those before `from` counting as state. */
  check(entries: NewEntry[], from: number): void
  /** Applies and seals `entries` in one transaction with `ops` (under `tree`, if given); resolves when durable. */
  commit(entries: NewEntry[], ops: StoreOperation[], tree?: TreeSeal): Promise<void>
}

interface Queued {
  write: Write
  ops: StoreOperation[]
  resolve: () => void
  reject: (err: unknown) => void
}

interface Batch {
  entries: NewEntry[]
  keys: Set<string>
  ops: StoreOperation[]
  writers: Queued[]
  bytes: number
}

/** Most bytes (estimated) of one transaction: its update stays well under the peers' 256 KiB cap. */
export const BATCH_BYTES = 160 * 1024

export class WriteTurn {
  readonly #host: TurnHost
  #queued: Queued[] = []

  constructor(host: TurnHost) {
    this.#host = host
  }

  /** Writes waiting for the end of the turn. */
  get pending(): number {
    return this.#queued.length
  }

  /** The entries of `map` waiting for the end of the turn, with their keys, in call order. */
  queued(map: SealedMapName): Array<{ key: string; value: Entry }> {
    return this.#queued.flatMap((q) => q.write.filter((e) => e.map === map))
  }

  add(write: Write, ops: StoreOperation[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#queued.push({ write, ops, resolve, reject }) === 1) due(this)
    })
  }

  /**
   * Checks the queued writes and commits every full transaction; returns the last one, to
   * be committed by `runDue` (with the other rooms' of the turn).
   */
  prepare(): Batch | undefined {
    const queued = this.#queued
    this.#queued = []
    const host = this.#host
    try {
      host.assertHealthy()
    } catch (err) {
      for (const q of queued) q.reject(err)
      return undefined
    }
    let batch = empty()
    let next = 0
    try {
      for (; next < queued.length; next++) {
        const q = queued[next] as Queued
        const b = batch
        const news: NewEntry[] = q.write
          .filter((e) => !host.has(e.map, e.key) && !b.keys.has(`${e.map}/${e.key}`))
          .map((e) => ({ ...e, sealedBy: host.sealedBy }))
        const bytes = news.reduce((n, e) => n + JSON.stringify(e.value).length + e.key.length + 256, 0)
        if (b.entries.length + news.length >= MAX_BATCH_ENTRIES || b.bytes + bytes > BATCH_BYTES) {
          commitBatch(host, b)
          batch = empty()
        }
        try {
          host.check([...batch.entries, ...news], batch.entries.length)
        } catch (err) {
          q.reject(err)
          continue
        }
        for (const e of news) batch.keys.add(`${e.map}/${e.key}`)
        batch.entries.push(...news)
        // A write with nothing new commits nothing (as before): its ops are not written.
        if (news.length > 0) batch.ops.push(...q.ops)
        batch.writers.push(q)
        batch.bytes += bytes
      }
    } catch (err) {
      // Not expected; but the turns of every room run together (runDue), and one room's
      // surprise must fail its own writers that are not yet committed, not the other rooms'.
      for (const q of [...batch.writers, ...queued.slice(next)]) q.reject(err)
      return undefined
    }
    return batch.writers.length === 0 ? undefined : batch
  }

  get host(): TurnHost {
    return this.#host
  }
}

function commitBatch(host: TurnHost, batch: Batch, tree?: TreeSeal): void {
  if (batch.writers.length === 0) return
  let durable: Promise<void>
  try {
    durable = host.commit(batch.entries, batch.ops, tree)
  } catch (err) {
    for (const q of batch.writers) q.reject(err)
    return
  }
  for (const q of batch.writers) durable.then(q.resolve, q.reject)
}

/** The rooms' turns with writes queued, run together at the end of this turn of the event loop. */
const dueTurns = new Set<WriteTurn>()

function due(turn: WriteTurn): void {
  if (dueTurns.size === 0) setImmediate(runDue)
  dueTurns.add(turn)
}

function runDue(): void {
  const turns = [...dueTurns]
  dueTurns.clear()
  // The last transaction of each room, by the key and mesh that seal it.
  const bySigner = new Map<string, { key: Ed25519KeyPair; mesh: string; last: Array<[TurnHost, Batch]> }>()
  for (const turn of turns) {
    const batch = turn.prepare()
    if (batch === undefined) continue
    const host = turn.host
    let key: Ed25519KeyPair
    try {
      key = host.signer()
    } catch (err) {
      for (const q of batch.writers) q.reject(err)
      continue
    }
    const at = `${key.did} ${host.sealedBy}`
    const group = bySigner.get(at) ?? { key, mesh: host.sealedBy, last: [] }
    group.last.push([host, batch])
    bySigner.set(at, group)
  }
  for (const { key, mesh, last } of bySigner.values()) {
    const trees = last.length > 1 ? sealTogether(key, mesh, last) : undefined
    last.forEach(([host, batch], i) => {
      commitBatch(host, batch, trees?.[i])
    })
  }
}

/** The leaves of several rooms' transactions under one signature (undefined: each signs its own). */
function sealTogether(
  key: Ed25519KeyPair,
  mesh: string,
  last: Array<[TurnHost, Batch]>,
): Array<TreeSeal | undefined> | undefined {
  try {
    // A transaction listing more than a record may (one huge write) keeps its own records.
    const leaves = last.map(([host, batch]) => host.leaf(batch.entries, key.did))
    const inTree = leaves.filter((leaf) => leaf !== undefined)
    if (inTree.length < 2) return undefined
    const signed = signLeaves(
      key,
      inTree.map((leaf) => leaf.id),
      mesh,
    )
    let next = 0
    return leaves.map((leaf) =>
      leaf === undefined ? undefined : { leaf, signed: signed[next++] as TreeSeal['signed'] },
    )
  } catch {
    return undefined // each transaction then seals on its own (and fails its writers if it cannot)
  }
}

function empty(): Batch {
  return { entries: [], keys: new Set(), ops: [], writers: [], bytes: 0 }
}
