import { once } from 'node:events'
import { setTimeout } from 'node:timers/promises'
import type { Connection, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { ERROR_STATUS, MeshError, type MeshErrorCode, TooLargeError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from './blob-store.ts'
import { isFileCid } from './cid.ts'

/**
 * `/mesh/files/1.0.0`: a peer mesh asks for a file of a room shared with it, from an
 * offset: `{room, cid, offset}` (one length-prefixed JSON frame). The answer is one JSON
 * frame, `{"ok": {"size": n}}` or `{"error": {code, message, details}}`, then the bytes
 * from `offset` to the end in length-prefixed chunks. The fetcher hashes the whole file
 * (what it held before a cut, then what arrives) and stores it only when it hashes to
 * the CID.
 */
export const FILES_PROTOCOL = '/mesh/files/1.0.0'

export const FILE_PROTOCOL_LIMITS = {
  /** Bytes per chunk frame. */
  chunkBytes: 256 * 1024,
  maxRequestBytes: 1024,
  maxHeaderBytes: 4096,
  /** The request must arrive within this. */
  requestTimeoutMs: 10_000,
} as const

export interface FileRequest {
  room: string
  cid: string
  offset: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value))
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes))
  } catch {
    return undefined
  }
}

function isRequest(v: unknown): v is FileRequest {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const o = v as Record<string, unknown>
  return (
    Object.keys(o).length === 3 &&
    typeof o.room === 'string' &&
    /^[A-Za-z0-9_-]{8,64}$/.test(o.room) &&
    isFileCid(o.cid) &&
    typeof o.offset === 'number' &&
    Number.isSafeInteger(o.offset) &&
    o.offset >= 0
  )
}

export interface FileServerComponents {
  store: BlobStore
  /**
   * The peer mesh behind an inbound connection, and why it may not ask now (not an
   * accepted connection, a retired key, denied by policy, over its rate).
   */
  admit: (connection: Connection) => Promise<{ peer: string; error?: MeshError }>
  /** Whether the room is shared with `mesh` now and one of its messages names `cid`. */
  servesTo: (mesh: string, room: string, cid: string) => Promise<boolean>
  /** A refused request (for the rejected log and reputation); must not throw. */
  onRefused?: (peer: string, err: MeshError) => void
  /** Bytes per second one transfer is served at most; default unbounded. */
  bytesPerSecond?: number
  logger: Logger
}

/** Answers `/mesh/files/1.0.0` streams. */
export class FileServer {
  readonly #c: FileServerComponents
  /** Transfers served (for tests and metrics). */
  readonly stats = { served: 0, refused: 0, bytes: 0 }

  constructor(components: FileServerComponents) {
    this.#c = components
  }

  async serve(stream: Stream, connection: Connection): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: FILE_PROTOCOL_LIMITS.maxRequestBytes })
    let peer = 'unknown'
    try {
      const request = parseJson(
        (await lp.read({ signal: AbortSignal.timeout(FILE_PROTOCOL_LIMITS.requestTimeoutMs) })).subarray(),
      )
      const admitted = await this.#c.admit(connection)
      peer = admitted.peer
      if (admitted.error !== undefined) throw admitted.error
      if (!isRequest(request)) throw new MeshError('MESH_BAD_REQUEST', 'malformed file request')
      const { room, cid, offset } = request
      // A room not shared with the peer, or no message of it naming the file: the same answer.
      if (!(await this.#c.servesTo(peer, room, cid)))
        throw new MeshError('MESH_FORBIDDEN', 'no room shared with this mesh names that file', { room, cid })
      const size = await this.#c.store.size(cid)
      if (size === undefined)
        throw new MeshError('MESH_NOT_FOUND', 'this mesh does not hold that file', { cid })
      if (offset > size) throw new MeshError('MESH_BAD_REQUEST', 'offset past the end of the file', { size })
      await lp.write(encodeJson({ ok: { size } }))
      this.stats.served++
      if (offset < size) {
        const read = this.#c.store.read(cid, { start: offset, end: size - 1 })
        const chunks = read as AsyncIterable<Buffer>
        const rate = this.#c.bytesPerSecond
        const started = Date.now()
        let sent = 0
        for await (const chunk of chunks) {
          await lp.write(chunk)
          sent += chunk.byteLength
          this.stats.bytes += chunk.byteLength
          if (rate !== undefined) {
            const wait = started + (sent / rate) * 1000 - Date.now()
            if (wait > 0) await setTimeout(wait)
          }
        }
      }
      await stream.close()
    } catch (err) {
      const e =
        err instanceof MeshError
          ? err
          : new MeshError('MESH_BAD_REQUEST', (err as Error)?.message ?? 'file request failed')
      this.stats.refused++
      this.#c.onRefused?.(peer, e)
      this.#c.logger.warn({ event: 'files.request_refused', peer, code: e.code }, e.message)
      try {
        await lp.write(encodeJson({ error: { code: e.code, message: e.message, details: e.details } }), {
          signal: AbortSignal.timeout(1000),
        })
        await stream.close({ signal: AbortSignal.timeout(1000) })
      } catch {
        stream.abort(e)
      }
    }
  }
}

export interface FetchComponents {
  store: BlobStore
  /** Opens a `/mesh/files/1.0.0` stream to the peer mesh. */
  dial: (mesh: string, signal: AbortSignal) => Promise<Stream>
}

/**
 * Fetches `cid` of `room` from `mesh` into the store, from the bytes held already. A cut
 * keeps what arrived (the next fetch resumes there); bytes that do not hash to the CID
 * are thrown away, nothing stored (MESH_SIGNATURE_MISMATCH, `details.reason`
 * `hash-mismatch`). Returns the file's size.
 */
export async function fetchFromPeer(
  c: FetchComponents,
  mesh: string,
  request: { room: string; cid: string },
  signal: AbortSignal,
): Promise<{ size: number; resumedAt: number }> {
  const { store } = c
  const { cid } = request
  const stream = await c.dial(mesh, signal)
  const lp = lpStream(stream, {
    maxDataLength: Math.max(FILE_PROTOCOL_LIMITS.chunkBytes, FILE_PROTOCOL_LIMITS.maxHeaderBytes),
  })
  const { offset, out, hasher } = await store.resume(cid)
  let got = offset
  let failed: unknown
  try {
    await lp.write(encodeJson({ room: request.room, cid, offset }), { signal })
    const head = parseJson((await lp.read({ signal })).subarray()) as {
      ok?: { size?: unknown }
      error?: { code?: unknown; message?: unknown; details?: unknown }
    }
    if (head?.error !== undefined) throw peerRefusal(mesh, head.error)
    const size = head?.ok?.size
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
      throw new MeshError('MESH_UNAVAILABLE', 'the peer sent an answer that is not one', { mesh })
    if (size > store.maxFileBytes)
      throw new TooLargeError(`the file is over this node's ${store.maxFileBytes} bytes`, { size, mesh })
    if (offset > size)
      throw new MeshError('MESH_UNAVAILABLE', 'the peer holds less than was fetched', { mesh })
    while (got < size) {
      const chunk = (await lp.read({ signal })).subarray()
      got += chunk.byteLength
      if (got > size) throw new MeshError('MESH_UNAVAILABLE', 'the peer sent more than the file', { mesh })
      hasher.hash.update(chunk)
      if (!out.write(chunk)) await once(out, 'drain', { signal })
    }
    out.end()
    await once(out, 'close')
    if (hasher.cid() !== cid) {
      await store.discardPartial(cid)
      throw new MeshError(
        'MESH_SIGNATURE_MISMATCH',
        'the peer sent bytes that do not hash to the file’s CID',
        {
          reason: 'hash-mismatch',
          mesh,
          cid,
          resumedAt: offset,
        },
      )
    }
    await store.commitPartial(cid, size)
    await stream.close({ signal }).catch(() => {})
    return { size, resumedAt: offset }
  } catch (err) {
    failed = err
    stream.abort(err as Error)
    throw err
  } finally {
    if (failed !== undefined && !out.closed) {
      // What arrived stays for the next try (a refused hash has discarded it already).
      out.end()
      await once(out, 'close').catch(() => {})
      if (failed instanceof TooLargeError) await store.discardPartial(cid)
    }
  }
}

function peerRefusal(
  mesh: string,
  error: { code?: unknown; message?: unknown; details?: unknown },
): MeshError {
  const message = typeof error.message === 'string' ? error.message.slice(0, 1024) : 'refused by the peer'
  const code = typeof error.code === 'string' && error.code in ERROR_STATUS ? error.code : undefined
  return new MeshError((code ?? 'MESH_FORBIDDEN') as MeshErrorCode, message, {
    refusedBy: mesh,
    ...(code === undefined ? { peerCode: String(error.code).slice(0, 64) } : {}),
  })
}
