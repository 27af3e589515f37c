import { randomBytes } from 'node:crypto'
import { mkdir, open as openFile, readdir, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import type { AbstractBatchOperation, AbstractSublevel } from 'abstract-level'
import { Level } from 'level'
import { StoreDamagedError, StoreVersionError } from '../errors.ts'
import { type Logger, silentLogger } from '../log.ts'
import { GroupCommit } from './group-commit.ts'

/** Bumped whenever the layout of a stored value or key changes incompatibly. */
export const STORE_SCHEMA_VERSION = 1
const SCHEMA_KEY = 'schema-version'
const PROBE_KEY = 'health-probe'
const MARK_KEY = 'durability-mark'
/** Beside LevelDB's files in the store directory; LevelDB leaves files it does not know alone. */
export const MARK_FILE = 'mesh-durability-mark.json'

/** One sublevel per concern; a module only ever sees its own. */
export const SUBLEVELS = [
  'meta',
  'registry',
  'discovery',
  'sessions',
  'members',
  'audit',
  'connections',
  'outbox',
  'envelopes',
  'policy',
  'rejected',
  'peers',
  'keys',
  'rooms',
  'room-updates',
  'notifications',
  'ucan-seen',
  'revocations',
  'trust',
  'credentials',
  'delegations',
  'agents',
  'dht',
  // agents in foreign rooms: capability sessions (hashed tokens)
  'capability-sessions',
  // the model proxy (SPEC §13): usage and quota windows per principal
  'model-usage',
  // store and forward (SPEC §10): a relay's mailboxes, a recipient's taken item ids
  'mailbox',
  // coordination fees (SPEC §10): receipts held as a relay, chain heads as a beneficiary
  'ledger',
] as const
export type SublevelName = (typeof SUBLEVELS)[number]

type Db = Level<string, unknown>
export type Sublevel<V = unknown> = AbstractSublevel<Db, string | Buffer | Uint8Array, string, V>
export type StoreOperation = AbstractBatchOperation<Db, string, unknown>

export interface MeshStoreInit {
  /** Directory of the LevelDB files. */
  path: string
  /**
   * Whether a missing database may be created; default true. False for the store of an
   * existing mesh: LevelDB, told to create a database where `CURRENT` is missing, writes
   * a new empty one and deletes the old tables as obsolete.
   */
  createIfMissing?: boolean
  /**
   * Whether a write resolves only once LevelDB has fsynced its write-ahead log; default
   * true, so whatever the node answers "stored" survives a power loss, not only a crash
   * of the process. A write may still pass `{sync: false}` for data it can rebuild.
   */
  sync?: boolean
  /**
   * Sublevels whose puts are not synced (unless they ask; deletes always are, so that a
   * logout or a revocation is never undone by a power loss): what is lost there costs a
   * repeat, not data — the DHT's records and the registry's entries, which the network
   * republishes, and sessions, which mean a new sign-in — and an fsync per write would
   * let a flood cost a disk flush each; default ['dht', 'registry', 'sessions'].
   */
  unsyncedSublevels?: SublevelName[]
  logger?: Logger
}

/** What a torn write-ahead log cost, found at open; see `MeshStore.open`. */
export interface TornLog {
  /** The mark the store directory says was durable, and the one the store holds. */
  expected: string
  found: string | null
  /** When the lost mark was written: writes acknowledged between it and the crash may be lost. */
  markedAt: string
}

interface Mark {
  nonce: string
  prev: string | null
  at: string
}

interface LevelWrites {
  _put(key: unknown, value: unknown, options: Record<string, unknown>): Promise<void>
  _del(key: unknown, options: Record<string, unknown>): Promise<void>
  _batch(operations: unknown[], options: Record<string, unknown>): Promise<void>
}

/**
 * The node's LevelDB. Every write that touches more than one key goes through
 * `batch`, which LevelDB applies atomically (write-ahead log), so a SIGKILL never
 * leaves a half-written record; with `sync` (the default) every write is also on disk
 * before it resolves, so a power loss does not take it either.
 *
 * Torn logs: a log cut short by a power loss (or a disk that lied about a sync) is
 * replayed by LevelDB up to the tear without a word. To notice, the store writes a
 * durability mark (a random nonce, synced) every `mark()` and at close, and then the
 * same nonce to a file beside the tables; at open a store whose mark is behind the
 * file's has lost writes after it, and `tornLog` says so (logged as `store.torn_log`).
 */
export class MeshStore {
  readonly path: string
  readonly #createIfMissing: boolean
  readonly #sync: boolean
  readonly #unsynced: string[]
  readonly #log: Logger
  #db?: Db
  readonly #sublevels = new Map<SublevelName, Sublevel>()
  #tornLog?: TornLog
  /** The nonce the mark file holds: a mark whose file write failed must not move it. */
  #fileNonce: string | null = null
  #marking: Promise<unknown> = Promise.resolve()
  /** Every `batch` of a tick in one LevelDB write and fsync (group-commit.ts, issue 15). */
  readonly #group = new GroupCommit<StoreOperation>((operations) => this.#opened().batch(operations))

  constructor(init: MeshStoreInit) {
    this.path = init.path
    this.#createIfMissing = init.createIfMissing ?? true
    this.#sync = init.sync ?? true
    // abstract-level's sublevel prefix: `!name!` before every key (nested ones included).
    this.#unsynced = (init.unsyncedSublevels ?? ['dht', 'registry', 'sessions']).map((name) => `!${name}!`)
    this.#log = (init.logger ?? silentLogger()).child({ area: 'store' })
  }

  async open(): Promise<void> {
    await this.#refuseDamaged()
    await mkdir(this.path, { recursive: true })
    // Made here, not in the constructor: abstract-level opens a new database on the next
    // tick by itself, which would run before the damage check above.
    // Opened again after a close: the same handle, so the sublevels given out stay valid.
    if (this.#db === undefined)
      this.#db = this.#durable(new Level<string, unknown>(this.path, { valueEncoding: 'json' }))
    const db = this.#db
    await db.open({ createIfMissing: this.#createIfMissing })
    await this.#openSublevels()
    const meta = this.sublevel<number>('meta')
    const found = await meta.get(SCHEMA_KEY)
    if (found === undefined) {
      await meta.put(SCHEMA_KEY, STORE_SCHEMA_VERSION)
    } else if (found !== STORE_SCHEMA_VERSION) {
      await db.close()
      throw new StoreVersionError(
        `store at ${this.path} has schema version ${String(found)}, this node reads ${STORE_SCHEMA_VERSION}`,
        { found, expected: STORE_SCHEMA_VERSION },
      )
    }
    await this.#checkMark()
  }

  /** Set when `open` found that writes before the last durability mark were lost. */
  get tornLog(): TornLog | undefined {
    return this.#tornLog
  }

  /**
   * Without `CURRENT` LevelDB cannot find its manifest and would start afresh, deleting
   * every table and log it finds: refused here, whether or not creating was allowed.
   */
  async #refuseDamaged(): Promise<void> {
    const files = await readdir(this.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined
      throw err
    })
    if (files?.includes('CURRENT') === true) return
    const data = (files ?? []).filter((f) => /\.(ldb|sst|log)$/.test(f) || f.startsWith('MANIFEST-'))
    if (data.length === 0 && this.#createIfMissing) return
    throw new StoreDamagedError(
      files === undefined
        ? `the store at ${this.path} is missing, but this data dir holds a mesh; refusing to create a new empty one; restore it from backup`
        : `the store at ${this.path} is missing its CURRENT file; it is damaged, refusing to create a new empty one (which would delete its ${data.length} table and log files); restore it from backup`,
      { path: this.path, missing: files === undefined ? 'store' : 'CURRENT', files: data.length },
    )
  }

  async close(): Promise<void> {
    const db = this.#db
    if (db?.status !== 'open') return
    await this.#group.settled()
    // A clean stop leaves a fresh mark, so the next open checks everything written until now.
    await this.mark().catch((err: unknown) =>
      this.#log.warn({ event: 'store.mark_failed', err }, 'could not write the durability mark'),
    )
    await db.close()
  }

  sublevel<V = unknown>(name: SublevelName): Sublevel<V> {
    let sub = this.#sublevels.get(name)
    if (sub === undefined) {
      sub = this.#opened().sublevel<string, unknown>(name, { valueEncoding: 'json' }) as Sublevel
      this.#sublevels.set(name, sub)
    }
    return sub as Sublevel<V>
  }

  /**
   * Applies operations on any sublevels (`{type, sublevel, key, value}`) all or nothing.
   * Group-committed (group-commit.ts): the batches of a tick, and those given while the
   * previous write was syncing, go to LevelDB as one write, in the order given.
   */
  async batch(operations: StoreOperation[]): Promise<void> {
    this.#opened()
    if (operations.length > 0) await this.#group.commit(operations)
  }

  /** Writes done and batches merged into them since open (benches, tests). */
  get groupStats(): { writes: number; batches: number } {
    return { ...this.#group.stats }
  }

  /**
   * One write and read of a key of its own: rejects when the store cannot write (a
   * descriptor limit reached, a disk error LevelDB keeps until reopened, a closed store).
   */
  async probe(): Promise<void> {
    const meta = this.sublevel<number>('meta')
    const value = Date.now()
    await meta.put(PROBE_KEY, value)
    if ((await meta.get(PROBE_KEY)) !== value)
      throw new Error('the store read back another value than it wrote')
  }

  /**
   * Closes and opens the database again on the same handle, and the sublevels `sublevel()`
   * gave out with it: LevelDB keeps a background write error until it is reopened. A
   * sublevel made from one of those (a nested one) stays closed: make it again.
   */
  async reopen(): Promise<void> {
    const db = this.#opened()
    if (db.status === 'open') await db.close().catch(() => {})
    await db.open({ createIfMissing: false })
    await this.#openSublevels()
  }

  // Closing a database closes its sublevels too, and opening it does not reopen them.
  async #openSublevels(): Promise<void> {
    for (const sub of this.#sublevels.values()) if (sub.status !== 'open') await sub.open()
  }

  /** Writes a durability mark (synced), then its nonce to the mark file; one at a time. */
  mark(): Promise<void> {
    const run = this.#marking.then(() => this.#writeMark())
    this.#marking = run.catch(() => {})
    return run
  }

  async #writeMark(): Promise<void> {
    const mark: Mark = {
      nonce: randomBytes(12).toString('base64url'),
      prev: this.#fileNonce,
      at: new Date().toISOString(),
    }
    // classic-level's own option, which abstract-level's types do not list.
    await this.sublevel<Mark>('meta').put(MARK_KEY, mark, { sync: true } as object)
    // The file follows the store, never leads it: a crash (or a failed file write) in
    // between leaves the file behind, on the nonce that `prev` names.
    const file = join(this.path, MARK_FILE)
    const handle = await openFile(`${file}.tmp`, 'w', 0o600)
    try {
      await handle.writeFile(`${JSON.stringify(mark)}\n`)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(`${file}.tmp`, file)
    // The rename itself is on disk only once the directory is.
    const dir = await openFile(this.path, 'r')
    try {
      await dir.sync()
    } finally {
      await dir.close()
    }
    this.#fileNonce = mark.nonce
  }

  async #checkMark(): Promise<void> {
    const stored = await this.sublevel<Mark>('meta').get(MARK_KEY)
    let expected: Mark | undefined
    try {
      expected = JSON.parse(await readFile(join(this.path, MARK_FILE), 'utf8')) as Mark
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    this.#fileNonce = expected?.nonce ?? null
    if (expected === undefined) return
    if (stored !== undefined && (stored.nonce === expected.nonce || stored.prev === expected.nonce)) return
    this.#tornLog = { expected: expected.nonce, found: stored?.nonce ?? null, markedAt: expected.at }
    this.#log.error(
      { event: 'store.torn_log', path: this.path, ...this.#tornLog },
      'the store lost writes it had acknowledged (torn write-ahead log); restore from backup or accept the loss',
    )
  }

  #opened(): Db {
    if (this.#db === undefined) throw new Error(`store at ${this.path} is not open`)
    return this.#db
  }

  /** Every write through the handle (and so through every sublevel) is synced unless it says otherwise. */
  #durable(db: Db): Db {
    if (!this.#sync) return db
    const raw = db as unknown as LevelWrites
    const put = raw._put.bind(db)
    const del = raw._del.bind(db)
    const batch = raw._batch.bind(db)
    const cached = (key: unknown) => typeof key === 'string' && this.#unsynced.some((p) => key.startsWith(p))
    const synced = (options: Record<string, unknown>, lazy: boolean) => ({
      ...options,
      sync: options.sync ?? !lazy,
    })
    raw._put = (key, value, options) => put(key, value, synced(options, cached(key)))
    raw._del = (key, options) => del(key, synced(options, false))
    raw._batch = (operations, options) => {
      const ops = operations as Array<{ type: string; key: unknown }>
      return batch(
        operations,
        synced(
          options,
          ops.every((op) => op.type === 'put' && cached(op.key)),
        ),
      )
    }
    return db
  }
}
