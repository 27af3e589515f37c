/**
 * The audit log's Merkle tree, kept in the audit sublevel beside the rows:
 *
 * ```
 * tree/v1/n/<level, 2 digits>/<index, 16 digits>   hex hash of a perfect subtree
 * tree/v1/size                                      leaves the tree holds
 * ```
 *
 * Leaf i is the row of seq i + 1: `leafHash(the 32 bytes of row.hash)` — the row's hash
 * already covers every signed field and the link to the row before. A perfect subtree's
 * hash never changes once its leaves are written, so each append writes the new leaf
 * and the parents it completes (two puts amortized, at most log₂ n), in the same batch
 * as the row. The frontier (the perfect subtrees covering the whole tree, at most
 * log₂ n) stays in memory: an append reads nothing. A proof reads the stored nodes of
 * the subtrees it names (`merkle.ts`), O(log² n) at worst, in one `getMany` per proof.
 *
 * These keys sort after `head/v1` and `peer/v1/`, outside what `verify` walks.
 */

import type { AbortOptions } from '@libp2p/interface'
import type { Logger } from '../log.ts'
import type { StoreOperation, Sublevel } from '../store/index.ts'
import { type AuditRow, GENESIS_HASH, HASH_PATTERN, isRowShaped } from './audit-row.ts'
import { ENTRIES_END, entryKey } from './log-keys.ts'
import {
  consistencyRanges,
  foldCover,
  type Hash,
  inclusionRanges,
  leafHash,
  type NodeId,
  nodeHash,
  perfectCover,
  type Range,
} from './merkle.ts'

export const TREE_PREFIX = 'tree/v1/'
const TREE_SIZE_KEY = `${TREE_PREFIX}size`
export const nodeKey = ({ level, index }: NodeId): string =>
  `${TREE_PREFIX}n/${String(level).padStart(2, '0')}/${String(index).padStart(16, '0')}`

/** The leaf of an audit row: its hash's 32 bytes, leaf-hashed. */
export function rowLeaf(rowHashHex: string): Hash {
  return leafHash(Buffer.from(rowHashHex, 'hex'))
}

interface Peak extends NodeId {
  hash: Hash
}

/** What one append adds: the operations for the row's batch, and `commit` once the batch is written. */
export interface TreeAppend {
  operations: StoreOperation[]
  commit: () => void
}

const BACKFILL_BATCH = 1000

export class MerkleStore {
  readonly #sublevel: Sublevel
  readonly #log: Logger
  #size = 0
  #peaks: Peak[] = []

  constructor(sublevel: Sublevel, logger: Logger) {
    this.#sublevel = sublevel
    this.#log = logger
  }

  get size(): number {
    return this.#size
  }

  /**
   * Loads the frontier for a log of `rows` rows, first adding to the tree the rows it
   * lacks (a log written before the tree existed, once): a log whose rows were
   * removed or altered is not mended here (`verify` reports it); a missing row becomes
   * the leaf of an all-zero hash, so the tree keeps one leaf per position.
   */
  async start(rows: number, options: AbortOptions = {}): Promise<void> {
    const stored = await this.#sublevel.get(TREE_SIZE_KEY)
    const built = Number.isSafeInteger(stored) && (stored as number) >= 0 ? (stored as number) : 0
    const from = Math.min(built, rows)
    await this.#loadPeaks(from)
    if (from < rows) await this.#backfill(from, rows, options)
  }

  /** The operations that add the row hashing to `rowHashHex` as the next leaf. */
  append(rowHashHex: string): TreeAppend {
    const peaks = [...this.#peaks]
    const operations: StoreOperation[] = []
    let node: Peak = { level: 0, index: this.#size, hash: rowLeaf(rowHashHex) }
    operations.push(this.#put(node))
    for (let last = peaks.at(-1); last !== undefined && last.level === node.level; last = peaks.at(-1)) {
      peaks.pop()
      node = { level: node.level + 1, index: last.index / 2, hash: nodeHash(last.hash, node.hash) }
      operations.push(this.#put(node))
    }
    peaks.push(node)
    const size = this.#size + 1
    operations.push({ type: 'put', sublevel: this.#sublevel, key: TREE_SIZE_KEY, value: size })
    return {
      operations,
      commit: () => {
        this.#peaks = peaks
        this.#size = size
      },
    }
  }

  /** The root of the whole tree now (from the frontier, no read). */
  root(): Hash {
    return foldCover(this.#peaks.map((p) => p.hash))
  }

  /** The root of the first `size` leaves (≤ the tree's size). */
  async rootAt(size: number): Promise<Hash> {
    if (size === this.#size) return this.root()
    return (await this.#hashes([[0, size]]))[0] as Hash
  }

  /** The audit path of leaf `index` in the tree of `size` leaves (RFC 6962 §2.1.1). */
  async inclusionProof(index: number, size: number): Promise<Hash[]> {
    return this.#hashes(inclusionRanges(index, size))
  }

  /** The proof that the tree of `to` leaves extends the one of `from` (RFC 6962 §2.1.2). */
  async consistencyProof(from: number, to: number): Promise<Hash[]> {
    if (from === 0 || from === to) return []
    return this.#hashes(consistencyRanges(from, to))
  }

  // The hashes of `ranges`, reading every node they need at once.
  async #hashes(ranges: readonly Range[]): Promise<Hash[]> {
    const covers = ranges.map(([start, end]) => perfectCover(start, end))
    const ids = covers.flat()
    const values = ids.length === 0 ? [] : await this.#sublevel.getMany(ids.map(nodeKey))
    let at = 0
    return covers.map((cover) => {
      const hashes = cover.map((id) => {
        const value = values[at++]
        if (typeof value !== 'string' || !HASH_PATTERN.test(value)) {
          throw new Error(`the audit tree lacks node ${nodeKey(id)}`)
        }
        return Buffer.from(value, 'hex')
      })
      return foldCover(hashes)
    })
  }

  async #loadPeaks(size: number): Promise<void> {
    const cover = perfectCover(0, size)
    const hashes = await this.#hashes(
      cover.map((id): Range => {
        const width = 2 ** id.level
        return [id.index * width, (id.index + 1) * width]
      }),
    )
    this.#peaks = cover.map((id, i) => ({ ...id, hash: hashes[i] as Hash }))
    this.#size = size
  }

  async #backfill(from: number, to: number, options: AbortOptions): Promise<void> {
    this.#log.info({ event: 'audit.tree.backfill', from, to }, 'adding audit rows to the Merkle tree')
    let pending: StoreOperation[] = []
    let expected = from + 1
    const add = (hash: string): void => {
      const step = this.append(hash)
      pending.push(...step.operations)
      step.commit()
    }
    const flush = async (): Promise<void> => {
      // Straight into the sublevel: every operation here is a put of a tree key.
      const puts = pending.map((op) => ({
        type: 'put' as const,
        key: String(op.key),
        value: (op as { value: unknown }).value,
      }))
      if (puts.length > 0) await this.#sublevel.batch(puts)
      pending = []
    }
    for await (const [, value] of this.#sublevel.iterator({
      gte: entryKey(from + 1),
      lt: ENTRIES_END,
    })) {
      options.signal?.throwIfAborted()
      const row = value as AuditRow
      if (!isRowShaped(row) || row.seq < expected) continue
      if (row.seq > to) break
      for (; expected < row.seq; expected++) add(GENESIS_HASH)
      add(HASH_PATTERN.test(row.hash) ? row.hash : GENESIS_HASH)
      expected++
      if (pending.length >= BACKFILL_BATCH) await flush()
    }
    for (; expected <= to; expected++) add(GENESIS_HASH)
    await flush()
    if (from > 0 || to > 0) {
      this.#log.info({ event: 'audit.tree.backfilled', size: this.#size }, 'audit Merkle tree caught up')
    }
  }

  #put(node: Peak): StoreOperation {
    return { type: 'put', sublevel: this.#sublevel, key: nodeKey(node), value: node.hash.toString('hex') }
  }
}
