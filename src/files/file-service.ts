import type { Readable } from 'node:stream'
import { BadRequestError, ForbiddenError, MeshError, NotFoundError, TooLargeError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from './blob-store.ts'
import { type FetchComponents, fetchFromPeer } from './file-protocol.ts'

/** A file as a message names it. */
export interface FileRef {
  cid: string
  name: string
  size: number
  mime: string
}

/** What the files module asks of rooms (wired in src/node/files.ts). */
export interface FileRooms {
  /** Throws (MESH_NOT_FOUND / MESH_FORBIDDEN) unless `did` may post files to `room`. */
  assertMayPost: (did: string, room: string) => Promise<void>
  /**
   * A room `did` may read whose messages name `cid`: the file as named there and the
   * meshes to fetch it from (its authors' meshes, the room's home, the meshes it is
   * shared with; this mesh left out). `referenced` says whether any room here names it.
   */
  find: (
    did: string,
    cid: string,
  ) => Promise<{ found?: { room: string; file: FileRef; sources: string[] }; referenced: boolean }>
}

export interface FileServiceComponents extends FetchComponents {
  rooms: FileRooms
  logger: Logger
}

/** What a fetch did (for tests and the log). */
export interface FileStats {
  fetched: number
  resumed: number
  hashRefused: number
}

/**
 * Files in rooms (issue 18): uploads into the blob store, reads for those who may read a
 * room naming the file, fetched from the room's peers when this node lacks it.
 */
export class FileService {
  readonly #c: FileServiceComponents
  readonly #inflight = new Map<string, Promise<void>>()
  readonly stats: FileStats = { fetched: 0, resumed: 0, hashRefused: 0 }

  constructor(components: FileServiceComponents) {
    this.#c = components
  }

  get store(): BlobStore {
    return this.#c.store
  }

  /** Stores an upload of `did` for `room`; `declared` is the Content-Length, when known. */
  async upload(
    did: string,
    room: string,
    source: AsyncIterable<Uint8Array>,
    meta: { name: string; mime?: string; declared?: number },
  ): Promise<FileRef> {
    await this.#c.rooms.assertMayPost(did, room)
    const max = this.#c.store.maxFileBytes
    if (meta.declared !== undefined && meta.declared > max) {
      ;(source as Readable).resume?.()
      throw new TooLargeError(`a file may hold at most ${max} bytes`, { max, size: meta.declared })
    }
    const { cid, size } = await this.#c.store.put(source)
    this.#c.logger.info({ event: 'files.uploaded', room, cid, size, by: did }, 'file uploaded')
    return { cid, name: meta.name, size, mime: meta.mime ?? 'application/octet-stream' }
  }

  /** A post's attachments: each a file held here, of the size it claims (MESH_BAD_REQUEST otherwise). */
  async check(files: Array<{ cid: string; size: number }>): Promise<void> {
    for (const f of files) {
      const size = await this.#c.store.size(f.cid)
      if (size === undefined) throw new BadRequestError('upload the file before naming it', { cid: f.cid })
      if (size !== f.size) throw new BadRequestError('the file has another size', { cid: f.cid, size })
    }
  }

  /**
   * The file `did` asks for, as a room it may read names it; fetched from that room's
   * peers first when this node lacks it. MESH_NOT_FOUND: no room here names it;
   * MESH_FORBIDDEN: none that `did` may read.
   */
  async open(did: string, cid: string): Promise<{ file: FileRef; size: number }> {
    const { found, referenced } = await this.#c.rooms.find(did, cid)
    if (found === undefined) {
      if (referenced) throw new ForbiddenError('no room you may read names this file', { cid })
      throw new NotFoundError('no such file', { cid })
    }
    let size = await this.#c.store.size(cid)
    if (size === undefined) {
      await this.fetch(found.room, cid, found.sources)
      size = await this.#c.store.size(cid)
      if (size === undefined)
        throw new MeshError('MESH_UNAVAILABLE', 'the file could not be fetched', { cid })
    }
    return { file: found.file, size }
  }

  /** Fetches `cid` from the first of `sources` that has it (one fetch per CID at a time). */
  fetch(room: string, cid: string, sources: string[], signal?: AbortSignal): Promise<void> {
    let running = this.#inflight.get(cid)
    if (running === undefined) {
      running = this.#fetch(room, cid, sources, signal).finally(() => this.#inflight.delete(cid))
      this.#inflight.set(cid, running)
    }
    return running
  }

  async #fetch(room: string, cid: string, sources: string[], signal?: AbortSignal): Promise<void> {
    if (sources.length === 0)
      throw new MeshError('MESH_UNAVAILABLE', 'no peer mesh to fetch the file from', { cid, room })
    const errors: Array<{ mesh: string; code: string; message: string }> = []
    for (const mesh of sources) {
      // A resumed transfer that fails its hash is tried once more from the start.
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          const s = AbortSignal.any([AbortSignal.timeout(120_000), ...(signal ? [signal] : [])])
          const { size, resumedAt, stored } = await fetchFromPeer(this.#c, mesh, { room, cid }, s)
          // Readable now; on disk for good once `stored` settles (else the partial stays).
          stored.catch((err: Error) =>
            this.#c.logger.warn({ event: 'files.store_failed', room, cid }, err?.message ?? String(err)),
          )
          this.stats.fetched++
          if (resumedAt > 0) this.stats.resumed++
          this.#c.logger.info(
            { event: 'files.fetched', room, cid, size, resumedAt, from: mesh },
            'file fetched',
          )
          return
        } catch (err) {
          const e = err instanceof MeshError ? err : new MeshError('MESH_UNAVAILABLE', String(err), { mesh })
          errors.push({ mesh, code: e.code, message: e.message })
          const hash = e.details.reason === 'hash-mismatch'
          if (hash) this.stats.hashRefused++
          this.#c.logger.warn(
            {
              event: hash ? 'files.hash_refused' : 'files.fetch_failed',
              room,
              cid,
              from: mesh,
              code: e.code,
            },
            e.message,
          )
          if (e.code === 'MESH_TOO_LARGE') throw e
          if (!(hash && (e.details.resumedAt as number) > 0)) break
        }
      }
    }
    throw new MeshError('MESH_UNAVAILABLE', 'no peer mesh could give the file', { cid, room, errors })
  }
}
