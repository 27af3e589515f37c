import { open, readFile, rename } from 'node:fs/promises'
import { type Logger, silentLogger } from '../log.ts'
import type { AuditCheckpoint } from './checkpoint.ts'

/** The local checkpoint file's name, beside the store in the data dir. */
export const CHECKPOINT_FILE = 'audit-checkpoint.json'

/**
 * The audit log's own latest checkpoint, kept in a file outside the store, so that a
 * store restored from an older copy (or cut back together with its head) does not
 * bring an older checkpoint with it. The file holds one checkpoint's JSON, the form
 * `mesh audit --verify --checkpoint FILE` reads.
 *
 * `save` after each append: writes are coalesced (one at a time; the next one takes
 * the latest checkpoint), so an append never waits on an fsync, and each write is a
 * temporary file, fsync, then an atomic rename — a crash leaves the old checkpoint or
 * the new one, never half of one. `freeze` stops all writes: the file is then evidence.
 */
export class CheckpointFile {
  readonly path: string
  readonly #log: Logger
  #frozen = false
  #dirty = false
  #writing: Promise<void> | undefined

  constructor(path: string, logger: Logger = silentLogger()) {
    this.path = path
    this.#log = logger
  }

  /** The checkpoint stored: undefined when there is no file; throws when it cannot be read or parsed. */
  async read(): Promise<unknown> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    return JSON.parse(text) as unknown
  }

  /** Schedules a write of `current()` (called when the write starts, so it is the latest). */
  save(current: () => AuditCheckpoint): void {
    if (this.#frozen) return
    this.#dirty = true
    if (this.#writing !== undefined) return
    this.#writing = (async () => {
      while (this.#dirty && !this.#frozen) {
        this.#dirty = false
        try {
          await writeDurably(this.path, `${JSON.stringify(current())}\n`)
        } catch (err) {
          this.#log.error(
            { event: 'audit.checkpoint.write_failed', file: this.path, err },
            'writing the local audit checkpoint failed',
          )
          return
        }
      }
    })().finally(() => {
      this.#writing = undefined
    })
  }

  /** No more writes: what the file holds now is kept. */
  freeze(): void {
    this.#frozen = true
  }

  /** Waits for the write under way, if any. */
  async flush(): Promise<void> {
    await this.#writing
  }
}

async function writeDurably(path: string, text: string): Promise<void> {
  const temporary = `${path}.tmp`
  const handle = await open(temporary, 'w', 0o600)
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temporary, path)
}
