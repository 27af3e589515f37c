import { mkdir } from 'node:fs/promises'
import type { AbstractBatchOperation, AbstractSublevel } from 'abstract-level'
import { Level } from 'level'
import { StoreVersionError } from '../errors.ts'

/** Bumped whenever the layout of a stored value or key changes incompatibly. */
export const STORE_SCHEMA_VERSION = 1
const SCHEMA_KEY = 'schema-version'

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
] as const
export type SublevelName = (typeof SUBLEVELS)[number]

type Db = Level<string, unknown>
export type Sublevel<V = unknown> = AbstractSublevel<Db, string | Buffer | Uint8Array, string, V>
export type StoreOperation = AbstractBatchOperation<Db, string, unknown>

export interface MeshStoreInit {
  /** Directory of the LevelDB files (created if missing). */
  path: string
}

/**
 * The node's LevelDB. Every write that touches more than one key goes through
 * `batch`, which LevelDB applies atomically (write-ahead log), so a SIGKILL never
 * leaves a half-written record.
 */
export class MeshStore {
  readonly path: string
  readonly #db: Db
  readonly #sublevels = new Map<SublevelName, Sublevel>()

  constructor(init: MeshStoreInit) {
    this.path = init.path
    this.#db = new Level<string, unknown>(init.path, { valueEncoding: 'json' })
  }

  async open(): Promise<void> {
    await mkdir(this.path, { recursive: true })
    await this.#db.open()
    const meta = this.sublevel<number>('meta')
    const found = await meta.get(SCHEMA_KEY)
    if (found === undefined) {
      await meta.put(SCHEMA_KEY, STORE_SCHEMA_VERSION)
    } else if (found !== STORE_SCHEMA_VERSION) {
      await this.#db.close()
      throw new StoreVersionError(
        `store at ${this.path} has schema version ${String(found)}, this node reads ${STORE_SCHEMA_VERSION}`,
        { found, expected: STORE_SCHEMA_VERSION },
      )
    }
  }

  async close(): Promise<void> {
    if (this.#db.status === 'open') await this.#db.close()
  }

  sublevel<V = unknown>(name: SublevelName): Sublevel<V> {
    let sub = this.#sublevels.get(name)
    if (sub === undefined) {
      sub = this.#db.sublevel<string, unknown>(name, { valueEncoding: 'json' }) as Sublevel
      this.#sublevels.set(name, sub)
    }
    return sub as Sublevel<V>
  }

  /** Applies operations on any sublevels (`{type, sublevel, key, value}`) all or nothing. */
  async batch(operations: StoreOperation[]): Promise<void> {
    await this.#db.batch(operations)
  }
}
