import type { AbortOptions } from '@libp2p/interface'
import { BadRequestError, NotFoundError, UnavailableError } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'
import { type CheckedEntry, checkEntry, checkExtraOperations } from './audit-entry.ts'
import { type AuditListQuery, type AuditPage, listRows } from './audit-pages.ts'
import {
  type AuditEntryInput,
  type AuditHead,
  type AuditRow,
  GENESIS_HASH,
  isRowShaped,
  signRow,
} from './audit-row.ts'
import { type AuditVerifyOptions, type AuditVerifyReport, verifyLog } from './audit-verify.ts'
import { type AuditCheckpoint, signCheckpoint } from './checkpoint.ts'
import { CheckpointFile } from './checkpoint-file.ts'
import {
  ENTRIES_END,
  ENTRY_PREFIX,
  entryKey,
  HEAD_KEY,
  isHead,
  PEER_PREFIX,
  WATCH_PREFIX,
} from './log-keys.ts'
import { MerkleStore, rowLeaf } from './merkle-store.ts'
import { PARTY_LIMITS, partySeqs } from './party-rows.ts'
import { RollbackWatch } from './rollback-watch.ts'
import { type ConsistencyProof, type InclusionProof, type SignedTreeHead, signTreeHead } from './tree-head.ts'

// What routes.ts still takes from here (index.ts exports them from their own files).
export { AUDIT_LIST_LIMITS } from './audit-pages.ts'
export { AUDIT_PROBLEM_KINDS, type AuditVerifyReport } from './audit-verify.ts'

export interface AuditLogInit {
  /** The node's store; the log lives in the 'audit' sublevel. */
  store: MeshStore
  /** The mesh key that signs new rows (see `rotateKey`). */
  key: Ed25519KeyPair
  logger?: Logger
  /** The clock, in ms since the epoch; default `Date.now`. */
  now?: () => number
  /**
   * Every mesh key whose rows `verify` accepts, e.g. the key history kept by key
   * rotation. The keys this instance signed with (`key`, then each `rotateKey`) are
   * always accepted too. Default: none beyond those.
   */
  knownKeys?: () => string[]
  /** The mesh's identity did, named in checkpoints (it stays when the key rotates); default `key`'s did. */
  mesh?: string
  /**
   * A file outside the store (the node uses `<data dir>/audit-checkpoint.json`) where the
   * log keeps its latest signed checkpoint: rewritten durably (fsync, rename) after each
   * append, and compared with the log at start, so that a store restored from an older
   * copy, or cut back with its head, is reported (`audit.rollback_detected`, `verify`
   * not ok). Whoever can write the data dir can roll this file back too; see
   * `witness` for the copies kept elsewhere. Default: none.
   */
  checkpointFile?: string
  /**
   * Keep the RFC 6962 tree beside the rows (SPEC §11); default true. False only for the
   * benchmark's baseline (the hash chain alone): tree heads and proofs are then MESH_UNAVAILABLE.
   */
  merkle?: boolean
}

/** The checkpoint this node holds of a peer mesh's log (the latest consistent one), and what contradicted it. */
export interface PeerCheckpointRecord {
  checkpoint: AuditCheckpoint
  /** A later checkpoint from the same mesh that does not extend `checkpoint`, once seen. */
  conflict: { checkpoint: AuditCheckpoint; relation: 'shorter' | 'forked'; at: string } | null
}

export interface AuditAppendOptions extends AbortOptions {
  /**
   * Store operations written in the same atomic batch as the row: the state change
   * the row records lands with it or not at all. They may not touch the 'audit' sublevel.
   */
  with?: StoreOperation[]
}

/**
 * The audit log: append-only, hash-chained, each row signed by the mesh key.
 *
 * Appends run one at a time, so the chain stays linear under concurrent callers;
 * each append writes its row, the new head and the caller's own operations in one
 * atomic batch. `verify` walks the whole log and names each problem by position and
 * kind. A rewrite by whoever holds the mesh key cannot be caught from this store
 * alone; that is what comparing heads (`head()`, `verify({checkpoint})`) with peers is for.
 */
export class AuditLog {
  readonly #store: MeshStore
  readonly #sublevel: Sublevel
  readonly #log: Logger
  readonly #now: () => number
  readonly #knownKeys: () => string[]
  readonly #usedKeys = new Set<string>()
  #key: Ed25519KeyPair
  #head: AuditHead | null = null
  #writes: Promise<unknown> = Promise.resolve()
  #running = false
  readonly #mesh: string
  readonly #checkpointFile: CheckpointFile | undefined
  readonly #watch: RollbackWatch
  readonly #tree: MerkleStore
  readonly #merkle: boolean

  constructor(init: AuditLogInit) {
    this.#store = init.store
    this.#sublevel = init.store.sublevel('audit')
    this.#log = (init.logger ?? silentLogger()).child({ area: 'audit' })
    this.#now = init.now ?? Date.now
    this.#knownKeys = init.knownKeys ?? (() => [])
    this.#key = init.key
    this.#usedKeys.add(init.key.did)
    this.#mesh = init.mesh ?? init.key.did
    this.#tree = new MerkleStore(this.#sublevel, this.#log)
    this.#merkle = init.merkle ?? true
    this.#checkpointFile =
      init.checkpointFile === undefined ? undefined : new CheckpointFile(init.checkpointFile, this.#log)
    this.#watch = new RollbackWatch(
      {
        sublevel: this.#sublevel,
        logger: this.#log,
        head: () => this.head(),
        checkpoint: () => this.checkpoint(),
        knownKeys: () => this.knownKeys(),
        append: (entry) => this.append(entry),
        checkpointFile: this.#checkpointFile,
      },
      { mesh: this.#mesh },
    )
  }

  /** Loads the head. A log whose stored head disagrees with its rows still starts (and is logged): appending never hides tampering, it only adds after it. */
  async start(options: AbortOptions = {}): Promise<void> {
    if (this.#running) return
    const stored = await this.#sublevel.get(HEAD_KEY)
    options.signal?.throwIfAborted()
    let last: AuditRow | undefined
    for await (const [, value] of this.#sublevel.iterator({
      gte: ENTRY_PREFIX,
      lt: ENTRIES_END,
      reverse: true,
      limit: 1,
    })) {
      if (isRowShaped(value)) last = value
    }
    if (isHead(stored)) {
      this.#head = stored
      if (last === undefined || last.seq !== stored.seq || last.hash !== stored.hash) {
        this.#log.error(
          { event: 'audit.head_mismatch', head: stored, lastSeq: last?.seq ?? null },
          'the stored audit head does not match the last row; run verify',
        )
      }
    } else if (last !== undefined) {
      // The head is gone but rows remain: continue after the last row rather than
      // restart at seq 1 and overwrite history.
      this.#head = { seq: last.seq, hash: last.hash }
      this.#log.error(
        { event: 'audit.head_missing', lastSeq: last.seq },
        'the audit head is missing; run verify',
      )
    } else {
      this.#head = null
    }
    if (this.#merkle) await this.#tree.start(this.#head?.seq ?? 0, options)
    this.#running = true
    this.#log.info({ event: 'audit.started', head: this.#head }, 'audit log started')
    await this.#watch.checkLocal()
  }

  /** Waits for appends under way; the store stays open (its owner closes it). */
  async stop(_options: AbortOptions = {}): Promise<void> {
    if (!this.#running) return
    this.#running = false
    await this.#writes
    await this.#checkpointFile?.flush()
    this.#log.info({ event: 'audit.stopped', head: this.#head }, 'audit log stopped')
  }

  /** The mesh whose log this is (its identity did), as named in checkpoints. */
  get mesh(): string {
    return this.#mesh
  }

  /** The did of the key signing new rows. */
  get signer(): string {
    return this.#key.did
  }

  /** The last row written, or null for an empty log. */
  head(): AuditHead | null {
    return this.#head === null ? null : { ...this.#head }
  }

  /** The log's current head as a checkpoint signed by the mesh key, for peers and operators to keep. */
  checkpoint(): AuditCheckpoint {
    return signCheckpoint(this.#key, {
      mesh: this.#mesh,
      size: this.#head?.seq ?? 0,
      head: this.#head?.hash ?? null,
      ts: new Date(this.#now()).toISOString(),
    })
  }

  /**
   * The log's signed tree head now (SPEC §11): its size, its RFC 6962 Merkle root, signed
   * by the mesh key of the day (named in `key`).
   */
  treeHead(): SignedTreeHead {
    if (!this.#merkle) throw new UnavailableError('this audit log keeps no Merkle tree')
    return signTreeHead(this.#key, {
      mesh: this.#mesh,
      size: this.#tree.size,
      root: this.#tree.root(),
      ts: new Date(this.#now()).toISOString(),
    })
  }

  /**
   * The proof that row `seq` is in the log of `size` rows (default: now), with the row
   * and the head now. MESH_BAD_REQUEST for a seq below 1 or past `size`;
   * MESH_NOT_FOUND for a seq or size past the log's (or a row gone from the store).
   */
  async inclusionProof(seq: number, size?: number): Promise<InclusionProof> {
    const sth = this.treeHead()
    const at = size ?? sth.size
    checkPosition('seq', seq, 1)
    checkPosition('size', at, 1)
    if (at > sth.size || seq > sth.size) {
      throw new NotFoundError(`the log has ${sth.size} rows`, { seq, size: at, logSize: sth.size })
    }
    if (seq > at) throw new BadRequestError('seq is past size', { seq, size: at })
    const row = await this.#sublevel.get(entryKey(seq))
    if (!isRowShaped(row)) throw new NotFoundError(`row ${seq} is not in the store`, { seq })
    const [root, path] = await Promise.all([this.#tree.rootAt(at), this.#tree.inclusionProof(seq - 1, at)])
    return {
      mesh: this.#mesh,
      seq,
      size: at,
      root: root.toString('hex'),
      leaf: rowLeaf(row.hash).toString('hex'),
      path: path.map((h) => h.toString('hex')),
      row,
      sth,
    }
  }

  /**
   * The proof that the log of `to` rows (default: now) extends the log of `from` rows.
   * MESH_BAD_REQUEST when `from` > `to`; MESH_NOT_FOUND for a size past the log's.
   */
  async consistencyProof(from: number, to?: number): Promise<ConsistencyProof> {
    const sth = this.treeHead()
    const end = to ?? sth.size
    checkPosition('from', from, 0)
    checkPosition('to', end, 0)
    if (from > sth.size || end > sth.size) {
      throw new NotFoundError(`the log has ${sth.size} rows`, { from, to: end, logSize: sth.size })
    }
    if (from > end) throw new BadRequestError('from is past to', { from, to: end })
    const [fromRoot, toRoot, path] = await Promise.all([
      this.#tree.rootAt(from),
      this.#tree.rootAt(end),
      this.#tree.consistencyProof(from, end),
    ])
    return {
      mesh: this.#mesh,
      from,
      to: end,
      fromRoot: fromRoot.toString('hex'),
      toRoot: toRoot.toString('hex'),
      path: path.map((h) => h.toString('hex')),
      sth,
    }
  }

  /**
   * The rows after `after` that a peer mesh (`dids`: its identity and every key it held)
   * is party to, each with its inclusion proof in the log now (`head`), at most
   * `limit` (≤ PARTY_LIMITS.maxRows) from a bounded scan; `next` goes on, null at the end.
   */
  async partyProofs(
    dids: readonly string[],
    query: { after?: number; limit?: number } = {},
  ): Promise<{ head: SignedTreeHead; proofs: InclusionProof[]; next: number | null }> {
    const head = this.treeHead()
    const after = query.after ?? 0
    const limit = Math.min(query.limit ?? PARTY_LIMITS.maxRows, PARTY_LIMITS.maxRows)
    checkPosition('after', after, 0)
    checkPosition('limit', limit, 1)
    const { seqs, next } = await partySeqs(this.#sublevel, new Set(dids), { after, upTo: head.size, limit })
    const proofs = await Promise.all(seqs.map((seq) => this.inclusionProof(seq, head.size)))
    return { head, proofs, next }
  }

  /** Every key whose signature on a row or checkpoint of this mesh counts. */
  knownKeys(): Set<string> {
    return new Set([...this.#knownKeys(), ...this.#usedKeys])
  }

  /**
   * A checkpoint of this log held elsewhere (a peer handing back what it holds of us):
   * when the log no longer extends it, the rollback is reported — a
   * `audit.rollback_detected` log event and audit row, and every later `verify` not ok.
   * `ignored` when `value` is not a checkpoint of this mesh signed by one of its keys.
   */
  witness(value: unknown, source: string): Promise<'ok' | 'ignored' | 'rolled-back'> {
    return this.#watch.witness(value, source)
  }

  /** The checkpoint held of the peer mesh `peer` (its identity did), if any. */
  async peerCheckpoint(peer: string): Promise<PeerCheckpointRecord | undefined> {
    return (await this.#sublevel.get(PEER_PREFIX + peer)) as PeerCheckpointRecord | undefined
  }

  /** Keeps `record` for `peer`; with `entry`, in one batch with that audit row (a contradiction found). */
  async keepPeerCheckpoint(
    peer: string,
    record: PeerCheckpointRecord,
    entry?: AuditEntryInput,
  ): Promise<void> {
    const op: StoreOperation = {
      type: 'put',
      sublevel: this.#sublevel,
      key: PEER_PREFIX + peer,
      value: record,
    }
    if (entry === undefined) {
      await this.#store.batch([op])
      return
    }
    const checked = checkEntry(entry)
    await this.#serialized(() => this.#write(checked, [op], this.#key, {}))
  }

  /**
   * Keeps `value` under `key` in the audit sublevel, outside the rows (only `watch/v1/…`
   * keys: what this node holds of other meshes' logs); with `entry`, in one batch with
   * that audit row. `undefined` deletes.
   */
  async keepWatchRecord(key: string, value: unknown, entry?: AuditEntryInput): Promise<void> {
    if (!key.startsWith(WATCH_PREFIX)) throw new BadRequestError('a watch record key starts with watch/v1/')
    const op: StoreOperation =
      value === undefined
        ? { type: 'del', sublevel: this.#sublevel, key }
        : { type: 'put', sublevel: this.#sublevel, key, value }
    if (entry === undefined) {
      await this.#store.batch([op])
      return
    }
    const checked = checkEntry(entry)
    await this.#serialized(() => this.#write(checked, [op], this.#key, {}))
  }

  /** The watch record under `key` (see `keepWatchRecord`); `prefix` lists them all. */
  async watchRecord(key: string): Promise<unknown> {
    return this.#sublevel.get(key)
  }

  async *watchRecords(prefix: string): AsyncGenerator<[string, unknown]> {
    if (!prefix.startsWith(WATCH_PREFIX)) return
    yield* this.#sublevel.iterator({ gte: prefix, lt: `${prefix}\uffff` })
  }

  /**
   * Appends one row and returns it as stored. Refusals store nothing:
   * MESH_BAD_REQUEST (malformed entry, or `with` touching the audit sublevel),
   * MESH_TOO_LARGE (details over 8 KiB canonical), MESH_UNAVAILABLE (not started).
   * A failed batch (e.g. an invalid `with` operation) rejects and writes nothing.
   */
  async append(entry: AuditEntryInput, options: AuditAppendOptions = {}): Promise<AuditRow> {
    const checked = checkEntry(entry)
    const extra = checkExtraOperations(options.with ?? [], this.#sublevel)
    return this.#serialized(() => this.#write(checked, extra, this.#key, options))
  }

  /**
   * Signs later rows with `newKey`. Records `audit.key.rotated` (`{from, to}` plus
   * `details`), signed by the outgoing key, so the hand-over is itself in the chain;
   * `with` lands in the same batch (e.g. the key-history record). Rows already written
   * stay verifiable: the old key remains known to this instance, and `knownKeys` must
   * list it after a restart.
   */
  async rotateKey(
    newKey: Ed25519KeyPair,
    options: AuditAppendOptions & { details?: Record<string, unknown> } = {},
  ): Promise<AuditRow> {
    const extra = checkExtraOperations(options.with ?? [], this.#sublevel)
    return this.#serialized(async () => {
      const from = this.#key.did
      const checked = checkEntry({
        action: 'audit.key.rotated',
        subject: newKey.did,
        details: { ...options.details, from, to: newKey.did },
      })
      const row = await this.#write(checked, extra, this.#key, options)
      this.#key = newKey
      this.#usedKeys.add(newKey.did)
      this.#log.info(
        { event: 'audit.key.rotated', from, to: newKey.did, seq: row.seq },
        'audit signing key rotated',
      )
      return row
    })
  }

  /** One page of rows in seq order; MESH_BAD_REQUEST for a bad query. */
  list(query: AuditListQuery = {}, options: AbortOptions = {}): Promise<AuditPage> {
    return listRows(this.#sublevel, query, options)
  }

  /**
   * Walks the whole log from one snapshot and reports every problem found:
   * - `altered`: a row whose content no longer matches its hash, a malformed row, a
   *   row that does not link to the one before although both are signed (a substituted
   *   or forked row), a head that does not match its row, or rows beyond the head;
   * - `bad-signature`: the row's hash is not signed by its `signer`;
   * - `unknown-signer`: signed correctly, but by a key this mesh never used;
   * - `reordered`: an intact row stored at another row's position;
   * - `removed`: positions missing before the last row;
   * - `truncated`: rows missing at the end, up to the stored head or the checkpoint.
   */
  verify(options: AuditVerifyOptions = {}): Promise<AuditVerifyReport> {
    return verifyLog(
      { sublevel: this.#sublevel, logger: this.#log },
      { ...options, known: this.knownKeys(), rollbacks: [...this.#watch.problems] },
    )
  }

  // Runs `write` after every write before it. The chain keeps no rejection of its own:
  // each caller gets its write's error through the promise returned here.
  #serialized<T>(write: () => Promise<T>): Promise<T> {
    const run = this.#writes.then(write)
    this.#writes = run.catch(() => undefined)
    return run
  }

  async #write(
    entry: CheckedEntry,
    extra: StoreOperation[],
    key: Ed25519KeyPair,
    options: AbortOptions,
  ): Promise<AuditRow> {
    options.signal?.throwIfAborted()
    if (!this.#running) throw new UnavailableError('the audit log is not running')
    const seq = (this.#head?.seq ?? 0) + 1
    const unsigned = {
      seq,
      ts: new Date(this.#now()).toISOString(),
      action: entry.action,
      actor: entry.actor,
      subject: entry.subject,
      details: entry.details,
      prev: this.#head?.hash ?? GENESIS_HASH,
      signer: key.did,
    }
    const row = signRow(unsigned, key)
    const head: AuditHead = { seq, hash: row.hash }
    const grown = this.#merkle ? this.#tree.append(row.hash) : undefined
    await this.#store.batch([
      ...extra,
      { type: 'put', sublevel: this.#sublevel, key: entryKey(seq), value: row },
      { type: 'put', sublevel: this.#sublevel, key: HEAD_KEY, value: head },
      ...(grown?.operations ?? []),
    ])
    grown?.commit()
    this.#head = head
    this.#watch.save()
    this.#log.debug(
      { event: 'audit.appended', seq, action: row.action, subject: row.subject },
      'audit row appended',
    )
    return row
  }
}

function checkPosition(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new BadRequestError(`${name} must be an integer of at least ${min}`, { [name]: value })
  }
}
