import type { AbortOptions } from '@libp2p/interface'
import { BadRequestError, TooLargeError, UnavailableError } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import { canonicalBytes } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'
import {
  ACTION_PATTERN,
  AUDIT_LIMITS,
  type AuditEntryInput,
  type AuditHead,
  type AuditRow,
  auditSignedText,
  GENESIS_HASH,
  HASH_PATTERN,
  isRowShaped,
  rowHash,
  verifyRowSignature,
} from './audit-row.ts'
import { type AuditCheckpoint, isSignedCheckpoint, signCheckpoint } from './checkpoint.ts'
import { CheckpointFile } from './checkpoint-file.ts'

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

export interface AuditListQuery {
  /** Only rows with a greater seq; default 0 (from the start). */
  after?: number
  /** 1…500; default 100. */
  limit?: number
  /** Only rows whose action starts with this, e.g. `federation.connection.`. */
  action?: string
}

export interface AuditPage {
  entries: AuditRow[]
  /** Pass as `after` for the next page; null when this page reached the end. */
  nextCursor: number | null
}

export const AUDIT_PROBLEM_KINDS = [
  'altered',
  'removed',
  'reordered',
  'bad-signature',
  'truncated',
  'unknown-signer',
  'rolled-back',
] as const
export type AuditProblemKind = (typeof AUDIT_PROBLEM_KINDS)[number]

export interface AuditProblem {
  /** The position in the log where the problem was found (the first one, for a run of missing rows). */
  seq: number
  kind: AuditProblemKind
  message: string
}

export interface AuditVerifyOptions extends AbortOptions {
  /**
   * A head seen earlier (kept by an operator, or shown by a peer; a signed checkpoint's
   * `{seq: size, hash: head}`): the log must still hold that row with that hash. This
   * is what catches a rewrite by someone who holds the mesh key, or a truncation that
   * also rolled the stored head back.
   */
  checkpoint?: AuditHead
}

export interface AuditVerifyReport {
  ok: boolean
  /** Rows read. */
  count: number
  /** The head as stored, or null for an empty log. */
  head: AuditHead | null
  /** At most `MAX_PROBLEMS`, in log order. */
  problems: AuditProblem[]
}

export const AUDIT_LIST_LIMITS = { defaultLimit: 100, maxLimit: 500 } as const
const MAX_PROBLEMS = 1000

// Keys in the 'audit' sublevel. Seqs are zero-padded to the 16 digits of
// Number.MAX_SAFE_INTEGER so that key order is seq order. The head key sorts after
// every entry key, so one iterator (one LevelDB snapshot) reads rows and head together.
const ENTRY_PREFIX = 'entry/v1/'
const HEAD_KEY = 'head/v1'
const SEQ_DIGITS = 16
const entryKey = (seq: number): string => `${ENTRY_PREFIX}${String(seq).padStart(SEQ_DIGITS, '0')}`
const ENTRY_KEY_PATTERN = /^entry\/v1\/(\d{16})$/
// Checkpoints held of peer meshes' logs: after HEAD_KEY, so outside what verify walks.
const PEER_PREFIX = 'peer/v1/'

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
  // Rollbacks found this run (against the local checkpoint file or one a peer handed
  // back): every verify reports them until the node restarts.
  readonly #rollbacks: AuditProblem[] = []
  readonly #reported = new Set<string>()

  constructor(init: AuditLogInit) {
    this.#store = init.store
    this.#sublevel = init.store.sublevel('audit')
    this.#log = (init.logger ?? silentLogger()).child({ area: 'audit' })
    this.#now = init.now ?? Date.now
    this.#knownKeys = init.knownKeys ?? (() => [])
    this.#key = init.key
    this.#usedKeys.add(init.key.did)
    this.#mesh = init.mesh ?? init.key.did
    this.#checkpointFile =
      init.checkpointFile === undefined ? undefined : new CheckpointFile(init.checkpointFile, this.#log)
  }

  /** Loads the head. A log whose stored head disagrees with its rows still starts (and is logged): appending never hides tampering, it only adds after it. */
  async start(options: AbortOptions = {}): Promise<void> {
    if (this.#running) return
    const stored = await this.#sublevel.get(HEAD_KEY)
    options.signal?.throwIfAborted()
    let last: AuditRow | undefined
    for await (const [, value] of this.#sublevel.iterator({
      gte: ENTRY_PREFIX,
      lt: `${ENTRY_PREFIX}~`,
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
    this.#running = true
    this.#log.info({ event: 'audit.started', head: this.#head }, 'audit log started')
    if (this.#checkpointFile !== undefined) await this.#checkLocalCheckpoint(this.#checkpointFile)
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
  async witness(value: unknown, source: string): Promise<'ok' | 'ignored' | 'rolled-back'> {
    if (!isSignedCheckpoint(value) || value.mesh !== this.#mesh || !this.knownKeys().has(value.signer)) {
      this.#log.debug({ event: 'audit.witness.ignored', source }, 'not a checkpoint of this mesh')
      return 'ignored'
    }
    const problem = await this.#extends(value)
    if (problem === undefined) return 'ok'
    await this.#rolledBack(problem, source, value)
    return 'rolled-back'
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
    const checked = this.#checkEntry(entry)
    await this.#serialized(() => this.#write(checked, [op], this.#key, {}))
  }

  /**
   * Appends one row and returns it as stored. Refusals store nothing:
   * MESH_BAD_REQUEST (malformed entry, or `with` touching the audit sublevel),
   * MESH_TOO_LARGE (details over 8 KiB canonical), MESH_UNAVAILABLE (not started).
   * A failed batch (e.g. an invalid `with` operation) rejects and writes nothing.
   */
  async append(entry: AuditEntryInput, options: AuditAppendOptions = {}): Promise<AuditRow> {
    const checked = this.#checkEntry(entry)
    const extra = this.#checkExtraOperations(options.with ?? [])
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
    const extra = this.#checkExtraOperations(options.with ?? [])
    return this.#serialized(async () => {
      const from = this.#key.did
      const checked = this.#checkEntry({
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
  async list(query: AuditListQuery = {}, options: AbortOptions = {}): Promise<AuditPage> {
    const after = query.after ?? 0
    const limit = query.limit ?? AUDIT_LIST_LIMITS.defaultLimit
    if (!Number.isSafeInteger(after) || after < 0) throw new BadRequestError('after must be a seq ≥ 0')
    if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_LIST_LIMITS.maxLimit) {
      throw new BadRequestError(`limit must be 1…${AUDIT_LIST_LIMITS.maxLimit}`)
    }
    if (query.action !== undefined && !ACTION_PATTERN.test(query.action)) {
      throw new BadRequestError('action must match [a-z0-9_.-]{1,128}')
    }
    const entries: AuditRow[] = []
    let more = false
    for await (const [, value] of this.#sublevel.iterator({ gt: entryKey(after), lt: `${ENTRY_PREFIX}~` })) {
      options.signal?.throwIfAborted()
      // A damaged row is still listed as found (verify says what is wrong with it),
      // unless it is not even row-shaped, in which case there is nothing to show.
      if (!isRowShaped(value)) continue
      if (query.action !== undefined && !value.action.startsWith(query.action)) continue
      if (entries.length === limit) {
        more = true
        break
      }
      entries.push(value)
    }
    const last = entries.at(-1)
    return { entries, nextCursor: more && last !== undefined ? last.seq : null }
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
  async verify(options: AuditVerifyOptions = {}): Promise<AuditVerifyReport> {
    const known = this.knownKeys()
    const problems: AuditProblem[] = [...this.#rollbacks]
    const report = (seq: number, kind: AuditProblemKind, message: string): void => {
      if (problems.length < MAX_PROBLEMS) problems.push({ seq, kind, message })
    }
    const checkpoint = options.checkpoint
    let count = 0
    let head: AuditHead | null = null
    let headSeen = false
    let lastPosition = 0
    // The previous row, when it was intact and in its place: the only kind a link is checked against.
    let previous: { position: number; hash: string } | undefined
    let lastRowHash: string | undefined
    let checkpointFound = false

    for await (const [key, value] of this.#sublevel.iterator({ gte: ENTRY_PREFIX, lte: HEAD_KEY })) {
      options.signal?.throwIfAborted()
      if (key === HEAD_KEY) {
        headSeen = true
        if (isHead(value)) head = { seq: value.seq, hash: value.hash }
        continue
      }
      const match = ENTRY_KEY_PATTERN.exec(key)
      if (match === null) {
        report(
          lastPosition + 1,
          'altered',
          `unexpected key ${JSON.stringify(key.slice(0, 64))} in the audit log`,
        )
        continue
      }
      const position = Number(match[1])
      count++
      if (position > lastPosition + 1) {
        report(lastPosition + 1, 'removed', missingMessage(lastPosition + 1, position - 1))
      }
      lastPosition = position
      lastRowHash = undefined

      const check = checkRow(value, known)
      if (check.problem !== undefined) {
        report(position, check.problem.kind, check.problem.message)
        previous = undefined
        continue
      }
      const row = value as AuditRow
      if (row.seq !== position) {
        report(position, 'reordered', `row ${row.seq} is stored at position ${position}`)
        previous = undefined
        continue
      }
      if (position === 1 && row.prev !== GENESIS_HASH) {
        report(position, 'altered', 'the first row does not start from the genesis hash')
      } else if (previous !== undefined && previous.position === position - 1 && row.prev !== previous.hash) {
        report(
          position,
          'altered',
          `row ${position} does not link to row ${position - 1} (substituted or forked)`,
        )
      }
      if (checkpoint !== undefined && checkpoint.seq === position) {
        checkpointFound = true
        if (checkpoint.hash !== row.hash) {
          report(
            position,
            'altered',
            `row ${position} differs from the checkpoint: history rewritten or rolled back`,
          )
        }
      }
      previous = { position, hash: row.hash }
      lastRowHash = row.hash
    }

    if (headSeen && head === null) {
      report(lastPosition, 'altered', 'the stored head is malformed')
    } else if (!headSeen && count > 0) {
      report(lastPosition, 'truncated', 'the stored head is missing')
    }
    if (head !== null) {
      if (lastPosition < head.seq) {
        report(
          lastPosition + 1,
          'truncated',
          `${missingMessage(lastPosition + 1, head.seq)} (the head is ${head.seq})`,
        )
      } else if (lastPosition > head.seq) {
        report(
          head.seq + 1,
          'altered',
          `rows after the head (${head.seq}): the head was rolled back or rows were added`,
        )
      } else if (lastRowHash !== undefined && lastRowHash !== head.hash) {
        report(head.seq, 'altered', `row ${head.seq} does not match the stored head`)
      }
    }
    if (checkpoint !== undefined && !checkpointFound && lastPosition < checkpoint.seq) {
      report(
        lastPosition + 1,
        'truncated',
        `the log ends at row ${lastPosition} but a checkpoint saw row ${checkpoint.seq}: truncated or rolled back`,
      )
    }

    const ok = problems.length === 0
    if (!ok) {
      this.#log.warn(
        { event: 'audit.verify.failed', count, problems: problems.length, first: problems[0] },
        'audit log verification found problems',
      )
    }
    return { ok, count, head, problems }
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
    const hash = rowHash(unsigned)
    const signature = Buffer.from(key.sign(auditSignedText(hash))).toString('base64url')
    const row: AuditRow = { ...unsigned, hash, signature }
    const head: AuditHead = { seq, hash }
    await this.#store.batch([
      ...extra,
      { type: 'put', sublevel: this.#sublevel, key: entryKey(seq), value: row },
      { type: 'put', sublevel: this.#sublevel, key: HEAD_KEY, value: head },
    ])
    this.#head = head
    this.#saveCheckpoint()
    this.#log.debug(
      { event: 'audit.appended', seq, action: row.action, subject: row.subject },
      'audit row appended',
    )
    return row
  }

  // ---------------------------------------------------------------- rollback checks

  /** Whether the log still extends `checkpoint`: at least its size, and its last row unchanged. */
  async #extends(checkpoint: AuditCheckpoint): Promise<AuditProblem | undefined> {
    if (checkpoint.size === 0) return undefined
    const size = this.#head?.seq ?? 0
    const row = await this.#sublevel.get(entryKey(checkpoint.size))
    if (size < checkpoint.size || !isRowShaped(row)) {
      return {
        seq: Math.min(size, checkpoint.size - 1) + 1,
        kind: 'rolled-back',
        message: `the log has ${size} rows but a checkpoint signed ${checkpoint.ts} saw ${checkpoint.size}: truncated or rolled back`,
      }
    }
    if (row.hash !== checkpoint.head) {
      return {
        seq: checkpoint.size,
        kind: 'rolled-back',
        message: `row ${checkpoint.size} differs from a checkpoint signed ${checkpoint.ts}: history rewritten or rolled back`,
      }
    }
    return undefined
  }

  async #checkLocalCheckpoint(local: CheckpointFile): Promise<void> {
    const file = local.path
    let saved: unknown
    try {
      saved = await local.read()
    } catch (err) {
      this.#log.error(
        { event: 'audit.checkpoint.unreadable', file, err },
        'the local audit checkpoint is unreadable',
      )
      saved = null
    }
    if (saved === undefined) {
      this.#log.info({ event: 'audit.checkpoint.none', file }, 'no local audit checkpoint yet')
    } else if (
      !isSignedCheckpoint(saved) ||
      saved.mesh !== this.#mesh ||
      !this.knownKeys().has(saved.signer)
    ) {
      await this.#rolledBack(
        {
          seq: (this.#head?.seq ?? 0) + 1,
          kind: 'rolled-back',
          message: `the local checkpoint ${file} is unreadable or not signed by this mesh: replaced or tampered with`,
        },
        'local-checkpoint',
      )
    } else {
      const problem = await this.#extends(saved)
      if (problem !== undefined) await this.#rolledBack(problem, 'local-checkpoint', saved)
    }
    this.#saveCheckpoint()
  }

  async #rolledBack(problem: AuditProblem, source: string, checkpoint?: AuditCheckpoint): Promise<void> {
    const key = `${source}:${checkpoint?.size ?? ''}:${checkpoint?.head ?? ''}`
    if (this.#reported.has(key)) return
    this.#reported.add(key)
    this.#rollbacks.push({ ...problem, message: `${problem.message} (${source})` })
    // The local checkpoint is now evidence: later appends do not overwrite it.
    this.#checkpointFile?.freeze()
    this.#log.error(
      {
        event: 'audit.rollback_detected',
        source,
        head: this.#head,
        checkpoint: checkpoint ?? null,
        problem,
        ...(this.#checkpointFile !== undefined ? { file: this.#checkpointFile.path } : {}),
      },
      `audit log rollback detected: ${problem.message} (${source})`,
    )
    await this.append({
      action: 'audit.rollback_detected',
      subject: source.slice(0, AUDIT_LIMITS.maxSubjectLength),
      details: {
        source,
        message: problem.message,
        size: this.#head?.seq ?? 0,
        ...(checkpoint !== undefined ? { checkpoint } : {}),
      },
    })
  }

  #saveCheckpoint(): void {
    this.#checkpointFile?.save(() => this.checkpoint())
  }

  #checkEntry(entry: AuditEntryInput): CheckedEntry {
    if (typeof entry !== 'object' || entry === null) throw new BadRequestError('an audit entry is an object')
    const { action, actor, subject, details } = entry
    if (typeof action !== 'string' || !ACTION_PATTERN.test(action)) {
      throw new BadRequestError('action must match [a-z0-9_.-]{1,128}', {
        action: String(action).slice(0, 128),
      })
    }
    if (
      actor !== undefined &&
      (typeof actor !== 'string' || !actor.startsWith('did:') || actor.length > AUDIT_LIMITS.maxActorLength)
    ) {
      throw new BadRequestError('actor must be a DID')
    }
    if (
      subject !== undefined &&
      (typeof subject !== 'string' || subject.length > AUDIT_LIMITS.maxSubjectLength)
    ) {
      throw new BadRequestError(
        `subject must be a string of at most ${AUDIT_LIMITS.maxSubjectLength} characters`,
      )
    }
    if (
      details !== undefined &&
      (typeof details !== 'object' || details === null || Array.isArray(details))
    ) {
      throw new BadRequestError('details must be an object')
    }
    // Stored as its canonical JSON read back, so the stored value is exactly what was
    // hashed (no undefined fields, no toJSON surprises, no -0).
    const bytes = canonicalBytes(details ?? {})
    if (bytes.byteLength > AUDIT_LIMITS.maxDetailsBytes) {
      throw new TooLargeError(`details exceed ${AUDIT_LIMITS.maxDetailsBytes} bytes`, {
        bytes: bytes.byteLength,
        max: AUDIT_LIMITS.maxDetailsBytes,
      })
    }
    return {
      action,
      actor: actor ?? null,
      subject: subject ?? null,
      details: JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>,
    }
  }

  #checkExtraOperations(operations: StoreOperation[]): StoreOperation[] {
    if (!Array.isArray(operations)) throw new BadRequestError('with must be an array of store operations')
    for (const op of operations) {
      // Only the log writes its own rows; a caller's operation could otherwise overwrite history.
      if ((op as { sublevel?: unknown } | null)?.sublevel === this.#sublevel) {
        throw new BadRequestError('an operation written with an audit row may not touch the audit log')
      }
    }
    return [...operations]
  }
}

interface CheckedEntry {
  action: string
  actor: string | null
  subject: string | null
  details: Record<string, unknown>
}

function isHead(value: unknown): value is AuditHead {
  const v = value as Partial<AuditHead> | null | undefined
  return (
    typeof v === 'object' &&
    v !== null &&
    Number.isSafeInteger(v.seq) &&
    (v.seq as number) >= 1 &&
    typeof v.hash === 'string' &&
    HASH_PATTERN.test(v.hash)
  )
}

function missingMessage(from: number, to: number): string {
  return from === to ? `row ${from} is missing` : `rows ${from}–${to} are missing`
}

/** A row's own integrity, independent of where it is stored: shape, hash, signer, signature. */
function checkRow(
  value: unknown,
  known: Set<string>,
): { problem?: { kind: AuditProblemKind; message: string } } {
  if (!isRowShaped(value) || !HASH_PATTERN.test(value.prev) || !HASH_PATTERN.test(value.hash)) {
    return { problem: { kind: 'altered', message: 'the row is malformed' } }
  }
  let recomputed: string
  try {
    recomputed = rowHash(value)
  } catch {
    return { problem: { kind: 'altered', message: 'the row has no canonical form' } }
  }
  if (recomputed !== value.hash) {
    return { problem: { kind: 'altered', message: 'the row content does not match its hash' } }
  }
  if (!verifyRowSignature(value)) {
    return {
      problem: { kind: 'bad-signature', message: `the row is not signed by its signer ${value.signer}` },
    }
  }
  if (!known.has(value.signer)) {
    return {
      problem: {
        kind: 'unknown-signer',
        message: `the row is signed by ${value.signer}, not a key of this mesh`,
      },
    }
  }
  return {}
}
