import { once } from 'node:events'
import { createReadStream, createWriteStream, type ReadStream, type WriteStream } from 'node:fs'
import {
  type FileHandle,
  mkdir,
  open as openFile,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { MeshError, TooLargeError } from '../errors.ts'
import { cidHasher, isFileCid } from './cid.ts'

export const FILE_DEFAULTS = {
  /** Largest file uploaded or fetched (`--max-file-bytes`). */
  maxFileBytes: 25 * 1024 * 1024,
  /** What blobs fetched from peers may take on disk (`--file-cache-bytes`); own uploads never count. */
  cacheBytes: 512 * 1024 * 1024,
} as const

/** What a fetch may have written but not yet on disk before the peer is paused (a yamux window). */
const PARTIAL_BUFFER_BYTES = 16 * 1024 * 1024

export interface BlobStoreInit {
  /** `<data dir>/blobs`. */
  dir: string
  maxFileBytes?: number
  cacheBytes?: number
}

export interface StoredBlob {
  cid: string
  size: number
}

/** A complete, hash-checked fetch on its way to disk: readable from its partial meanwhile. */
interface Settling {
  size: number
  stored: Promise<void>
}

interface CacheRow {
  size: number
  usedAt: number
}

/**
 * Content-addressed blobs under the data dir: `<dir>/<cid>`, each written to a temp file
 * and renamed into place once its hash is known (a reader never sees half a blob).
 * Blobs fetched from peers are cached within `cacheBytes` (least recently used go
 * first; `<dir>/.cache.json`); own uploads are kept. A transfer from a peer grows
 * `<dir>/.partial/<cid>` and resumes from its size after a cut. A complete, hash-checked
 * partial is readable at once (`size`, `read`) while it is synced, renamed under its CID and
 * indexed (`commitPartial`): only synced bytes are ever renamed, and a crash before that
 * leaves a partial the next fetch hashes again from its first byte.
 */
export class BlobStore {
  readonly dir: string
  readonly maxFileBytes: number
  readonly cacheBytes: number
  #cache = new Map<string, CacheRow>()
  readonly #settling = new Map<string, Settling>()
  #tmpSeq = 0
  #lastUse = 0

  constructor(init: BlobStoreInit) {
    this.dir = init.dir
    this.maxFileBytes = init.maxFileBytes ?? FILE_DEFAULTS.maxFileBytes
    this.cacheBytes = init.cacheBytes ?? FILE_DEFAULTS.cacheBytes
  }

  async start(): Promise<void> {
    await mkdir(join(this.dir, '.tmp'), { recursive: true })
    await mkdir(join(this.dir, '.partial'), { recursive: true })
    // Uploads cut by a crash leave temp files behind: none is anyone's.
    await rm(join(this.dir, '.tmp'), { recursive: true, force: true })
    await mkdir(join(this.dir, '.tmp'), { recursive: true })
    try {
      const rows = JSON.parse(await readFile(this.#cacheFile, 'utf8')) as Record<string, CacheRow>
      for (const [cid, row] of Object.entries(rows)) {
        if (!isFileCid(cid)) continue
        this.#cache.set(cid, row)
        this.#lastUse = Math.max(this.#lastUse, row.usedAt)
      }
    } catch {
      // No cache index yet (or a damaged one: its blobs count as own until fetched again).
    }
  }

  get #cacheFile(): string {
    return join(this.dir, '.cache.json')
  }

  #path(cid: string): string {
    if (!isFileCid(cid)) throw new MeshError('MESH_BAD_REQUEST', 'not a file CID', { cid })
    return join(this.dir, cid)
  }

  partialPath(cid: string): string {
    return join(this.dir, '.partial', this.#path(cid).slice(this.dir.length + 1))
  }

  /** The blob's size, or undefined when this node does not hold it. */
  async size(cid: string): Promise<number | undefined> {
    const settling = this.#settling.get(cid)
    if (settling !== undefined) return settling.size
    try {
      return (await stat(this.#path(cid))).size
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  /**
   * Reads `[start, end]` (inclusive) of a blob, `chunkBytes` a read; a cached blob counts as
   * used. The stream reads through the descriptor `openRead` opened (closed at its end).
   */
  async read(
    cid: string,
    range?: { start: number; end: number },
    chunkBytes = 256 * 1024,
  ): Promise<ReadStream> {
    const file = await this.openRead(cid)
    return file.createReadStream({ ...range, highWaterMark: chunkBytes })
  }

  /**
   * Opens a blob for reading (the file server reads it positionally into reused buffers,
   * `read` streams it); a cached blob counts as used. Verified and on its way to disk
   * (`commitPartial`): the partial, or the blob if it was renamed before the open (a rename
   * moves the name atomically: one of the two opens). An open descriptor reads on after the
   * rename.
   */
  async openRead(cid: string): Promise<FileHandle> {
    const row = this.#cache.get(cid)
    if (row !== undefined) row.usedAt = this.#clock()
    const path = this.#path(cid)
    if (!this.#settling.has(cid)) return openFile(path, 'r')
    try {
      return await openFile(this.partialPath(cid), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      return openFile(path, 'r')
    }
  }

  /**
   * Stores what `source` yields, hashing it on the way; past `maxFileBytes` it is
   * refused (MESH_TOO_LARGE) and nothing is kept. An own upload: never evicted.
   */
  async put(source: AsyncIterable<Uint8Array>): Promise<StoredBlob> {
    const tmp = join(this.dir, '.tmp', `${process.pid}-${++this.#tmpSeq}`)
    const { hash, cid } = cidHasher()
    let size = 0
    const max = this.maxFileBytes
    const out = createWriteStream(tmp)
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Uint8Array>) {
          for await (const chunk of chunks) {
            size += chunk.byteLength
            if (size > max) throw new TooLargeError(`a file may hold at most ${max} bytes`, { max })
            hash.update(chunk)
            yield chunk
          }
        },
        out,
      )
      const id = cid()
      // A fetch of the same blob finishing meanwhile would count it as fetched after us.
      await this.#settling.get(id)?.stored.catch(() => {})
      await rename(tmp, this.#path(id))
      // An own upload of a blob fetched before: it is kept from now on.
      if (this.#cache.delete(id)) await this.#saveCache()
      return { cid: id, size }
    } catch (err) {
      // pipeline rejects before a write stream destroyed while still opening has
      // created its file: removed before that, the file would stay behind.
      if (!out.closed) await once(out, 'close').catch(() => {})
      await rm(tmp, { force: true })
      throw err
    }
  }

  /** Bytes of `cid` already fetched (a cut transfer resumes here). */
  async partialSize(cid: string): Promise<number> {
    try {
      return (await stat(this.partialPath(cid))).size
    } catch {
      return 0
    }
  }

  /**
   * The partial blob to append to, with a hasher already fed its bytes (so the whole is
   * checked, not only what this transfer brings).
   */
  async resume(
    cid: string,
  ): Promise<{ offset: number; out: WriteStream; hasher: ReturnType<typeof cidHasher> }> {
    // A fetch that ended before but is still on its way to disk: done first (or failed, its
    // partial left to be hashed here again).
    await this.#settling.get(cid)?.stored.catch(() => {})
    const path = this.partialPath(cid)
    const hasher = cidHasher()
    let offset = 0
    try {
      for await (const chunk of createReadStream(path)) {
        hasher.hash.update(chunk as Buffer)
        offset += (chunk as Buffer).byteLength
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    // Its buffer lets a fetch run a yamux window (16 MiB) ahead of the disk before the peer
    // is paused; what arrives while a write is under way goes in the next one (one writev).
    // Not synced on close: `commitPartial` syncs a complete one (off the fetch's path),
    // `syncPartial` a cut one.
    const out = createWriteStream(path, {
      flags: offset === 0 ? 'w' : 'a',
      highWaterMark: PARTIAL_BUFFER_BYTES,
    })
    return { offset, out, hasher }
  }

  async discardPartial(cid: string): Promise<void> {
    await rm(this.partialPath(cid), { force: true })
  }

  /** Puts what was written to the partial on disk (fsync: the file's data, whichever descriptor wrote it). */
  async syncPartial(cid: string): Promise<void> {
    const handle = await openFile(this.partialPath(cid), 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  }

  /**
   * A complete, hash-checked partial (all its bytes written) becomes a cached blob. It is
   * readable at once (`size`, `read` serve it from the partial); then, off the caller's path,
   * it is synced, renamed under its CID (never before it is synced: a blob under its CID is
   * never short or wrong after a power loss; HTTP does not hash it again) and indexed, and
   * the cache is kept within its quota. Resolves once it is stored for good; if that fails
   * it is no longer readable and the partial stays (the next fetch hashes it again).
   */
  commitPartial(cid: string, size: number): Promise<void> {
    const partial = this.partialPath(cid)
    const stored = (async () => {
      await this.syncPartial(cid)
      await rename(partial, this.#path(cid))
      this.#cache.set(cid, { size, usedAt: this.#clock() })
      await this.#evict(cid)
    })().finally(() => this.#settling.delete(cid))
    this.#settling.set(cid, { size, stored })
    return stored
  }

  /** Every complete fetch on its way to disk is stored (or failed). */
  async settled(): Promise<void> {
    await Promise.all([...this.#settling.values()].map(async ({ stored }) => stored.catch(() => {})))
  }

  /** The clock, strictly increasing: two uses in one millisecond still have an order. */
  #clock(): number {
    this.#lastUse = Math.max(Date.now(), this.#lastUse + 1)
    return this.#lastUse
  }

  /** Fetched blobs held now (for views and tests). */
  cached(): Array<{ cid: string; size: number }> {
    return [...this.#cache].map(([cid, row]) => ({ cid, size: row.size }))
  }

  /** Least recently used fetched blobs go until the rest fit `cacheBytes` (`keep` stays). */
  async #evict(keep: string): Promise<void> {
    let total = 0
    for (const row of this.#cache.values()) total += row.size
    const order = [...this.#cache].filter(([cid]) => cid !== keep).sort((a, b) => a[1].usedAt - b[1].usedAt)
    for (const [cid, row] of order) {
      if (total <= this.cacheBytes) break
      await rm(this.#path(cid), { force: true })
      this.#cache.delete(cid)
      total -= row.size
    }
    await this.#saveCache()
  }

  async #saveCache(): Promise<void> {
    const tmp = join(this.dir, '.tmp', `cache-${process.pid}-${++this.#tmpSeq}`)
    await writeFile(tmp, JSON.stringify(Object.fromEntries(this.#cache)))
    await rename(tmp, this.#cacheFile)
  }
}
