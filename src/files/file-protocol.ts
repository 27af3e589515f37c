import { once } from 'node:events'
import type { FileHandle } from 'node:fs/promises'
import { setTimeout } from 'node:timers/promises'
import type { Connection, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { ERROR_STATUS, MeshError, type MeshErrorCode, TooLargeError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from './blob-store.ts'
import { isFileCid } from './cid.ts'
import { ReadPool, sendFile } from './read-pool.ts'

/**
 * `/mesh/files/1.0.0`: a peer mesh asks for a file of a room shared with it, from an
 * offset: `{room, cid, offset}` (one length-prefixed JSON frame). The answer is one
 * length-prefixed JSON frame, `{"ok": {"size": n}}` or `{"error": {code, message,
 * details}}`; after an `ok`, the bytes from `offset` to the end, as they are (the size
 * says where they end; the stream's own frames carry them). The fetcher hashes the whole file
 * (what it held before a cut, then what arrives) and stores it only when it hashes to
 * the CID.
 */
export const FILES_PROTOCOL = '/mesh/files/1.0.0'

export const FILE_PROTOCOL_LIMITS = {
  maxRequestBytes: 1024,
  maxHeaderBytes: 4096,
  /** What a paused fetch may hold from the peer (more than a yamux stream window). */
  maxHeldBytes: 20 * 1024 * 1024,
  /** The request must arrive within this. */
  requestTimeoutMs: 10_000,
} as const

/** How much the server reads off the disk at a time. */
const SERVE_READ_BYTES = 2 * 1024 * 1024
/** Idle read buffers a server keeps for the next transfer (8 MiB). */
const SERVE_POOL_KEEP = 4

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
  readonly #pool = new ReadPool(SERVE_READ_BYTES, SERVE_POOL_KEEP)

  constructor(components: FileServerComponents) {
    this.#c = components
  }

  async serve(stream: Stream, connection: Connection): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: FILE_PROTOCOL_LIMITS.maxRequestBytes })
    let peer = 'unknown'
    let opening: Promise<FileHandle> | undefined
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
      // Reads of 2 MiB (not 256 KiB): with small reads the disk reads, not the stream, set
      // the pace (issue 18, /work/notes/fileperf.md: the bare read went 0.5–0.7× → 0.9× raw),
      // into reused buffers, the next read under way while one is sent (read-pool.ts).
      // The file opens while the header goes out.
      opening = offset < size ? this.#c.store.openRead(cid) : undefined
      // Not left unheard while the header goes out: awaited below (or closed on a failure).
      opening?.catch(() => {})
      await lp.write(encodeJson({ ok: { size } }))
      this.stats.served++
      if (opening !== undefined) {
        const file = await opening
        const rate = this.#c.bytesPerSecond
        const started = Date.now()
        let sent = 0
        try {
          await sendFile(file, offset, size, this.#pool, async (chunk) => {
            const taken = stream.send(chunk) && stream.writeBufferLength === 0
            if (!taken) await stream.onDrain()
            sent += chunk.byteLength
            this.stats.bytes += chunk.byteLength
            if (rate !== undefined) {
              const wait = started + (sent / rate) * 1000 - Date.now()
              if (wait > 0) await setTimeout(wait)
            }
            return taken
          })
        } finally {
          await file.close()
        }
      }
      await stream.close()
    } catch (err) {
      // A file opened while the header went out, when the header failed.
      void opening?.then(
        (file) => file.close().catch(() => {}),
        () => {},
      )
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

/** A varint length prefix (LEB128, as `lpStream` writes it) and `bytes` after it. */
function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  const prefix: number[] = []
  let n = bytes.byteLength
  while (n >= 0x80) {
    prefix.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  prefix.push(n)
  const out = new Uint8Array(prefix.length + bytes.byteLength)
  out.set(prefix)
  out.set(bytes, prefix.length)
  return out
}

/**
 * What arrives on `stream`, message by message, to the end of it (`undefined`), each as the
 * buffers it came in (not joined: no copy). Unlike the stream's async iterator, what a
 * `pause()` held back still arrives after the remote end closed (the `end` event comes once
 * nothing is held).
 */
function inbox(stream: Stream): () => Promise<Uint8Array[] | undefined> {
  const queue: Uint8Array[][] = []
  let done = false
  let error: Error | undefined
  let wake: (() => void) | undefined
  const notify = () => {
    wake?.()
    wake = undefined
  }
  stream.addEventListener('message', (e) => {
    queue.push(e.data instanceof Uint8Array ? [e.data] : [...e.data])
    notify()
  })
  stream.addEventListener('end', () => {
    done = true
    notify()
  })
  stream.addEventListener('close', (e) => {
    error ??= (e as { error?: Error }).error
    done = true
    notify()
  })
  return async () => {
    for (;;) {
      const message = queue.shift()
      if (message !== undefined) return message
      if (error !== undefined) throw error
      if (done) return undefined
      await new Promise<void>((resolve) => {
        wake = resolve
      })
    }
  }
}

/** `chunks` from byte `from` on, without copying. */
function skipBytes(chunks: Uint8Array[], from: number): Uint8Array[] {
  const out: Uint8Array[] = []
  let at = 0
  for (const chunk of chunks) {
    if (at + chunk.byteLength > from) out.push(at >= from ? chunk : chunk.subarray(from - at))
    at += chunk.byteLength
  }
  return out
}

/** Longest answer header with its length prefix: what is joined to read it. */
const MAX_HEAD_BYTES = FILE_PROTOCOL_LIMITS.maxHeaderBytes + 3

/** The answer's header frame at the start of `buf`, and where the bytes after it begin; undefined while incomplete. */
function readHeader(buf: Uint8Array): { header: unknown; rest: number } | undefined {
  let length = 0
  for (let i = 0; i < Math.min(buf.length, 3); i++) {
    const b = buf[i] as number
    length |= (b & 0x7f) << (7 * i)
    if (b < 0x80) {
      if (length > FILE_PROTOCOL_LIMITS.maxHeaderBytes)
        throw new MeshError('MESH_UNAVAILABLE', 'the peer sent an answer that is not one')
      if (buf.length < i + 1 + length) return undefined
      return { header: parseJson(buf.subarray(i + 1, i + 1 + length)), rest: i + 1 + length }
    }
  }
  if (buf.length >= 3) throw new MeshError('MESH_UNAVAILABLE', 'the peer sent an answer that is not one')
  return undefined
}

/**
 * Fetches `cid` of `room` from `mesh` into the store, from the bytes held already. A cut
 * keeps what arrived (the next fetch resumes there); bytes that do not hash to the CID
 * are thrown away, nothing stored (MESH_SIGNATURE_MISMATCH, `details.reason`
 * `hash-mismatch`). Returns once the whole file hashed to the CID and is readable from the
 * store: its size, the offset it resumed at, and `stored`, which settles once it is synced
 * and renamed under its CID (a crash before leaves a partial, hashed again by the next fetch).
 */
export async function fetchFromPeer(
  c: FetchComponents,
  mesh: string,
  request: { room: string; cid: string },
  signal: AbortSignal,
): Promise<{ size: number; resumedAt: number; stored: Promise<void> }> {
  const { store } = c
  const { cid } = request
  // The partial opens (and what it holds is hashed) while the stream is negotiated: the
  // request, which names its offset, goes out one disk round trip sooner (issue 18).
  const resuming = store.resume(cid)
  resuming.catch(() => {}) // awaited below, after the dial
  let stream: Stream
  try {
    stream = await c.dial(mesh, signal)
  } catch (err) {
    await resuming.then(
      async ({ offset, out }) => {
        out.end()
        await once(out, 'close')
        // Nothing held before: the empty partial this dial made goes too.
        if (offset === 0) await store.discardPartial(cid)
      },
      () => {},
    )
    throw err
  }
  const { offset, out, hasher } = await resuming.catch((err: unknown) => {
    stream.abort(err as Error)
    throw err
  })
  let got = offset
  let size: number | undefined
  let failed: unknown
  const onAbort = () => stream.abort(signal.reason as Error)
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    // A pause stops the peer only once its window is spent (yamux: up to 16 MiB in flight);
    // what arrives meanwhile is held, so the stream must hold that much before it aborts.
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, FILE_PROTOCOL_LIMITS.maxHeldBytes)
    const next = inbox(stream)
    if (!stream.send(lengthPrefixed(encodeJson({ room: request.room, cid, offset }))))
      await stream.onDrain({ signal })
    // Until the header is read: what arrived (the header's bytes are joined to read it, at
    // most MAX_HEAD_BYTES; the file's bytes after it are passed on as they came).
    let head: Uint8Array[] | undefined = []
    let headBytes = 0
    for (let message = await next(); message !== undefined; message = await next()) {
      let chunks = message
      if (head !== undefined) {
        // The header first: `{ok: {size}}` or `{error}`; what follows it is the file.
        head.push(...chunks)
        for (const chunk of chunks) headBytes += chunk.byteLength
        const read = readHeader(Buffer.concat(head, Math.min(headBytes, MAX_HEAD_BYTES)))
        if (read === undefined) continue
        size = checkHeader(read.header, mesh, offset, store.maxFileBytes)
        chunks = skipBytes(head, read.rest)
        head = undefined
      }
      // Hashed as it arrives; written without waiting (the store's stream gathers what
      // arrives while a write is under way into one write). The peer waits only when the
      // disk is a whole buffer behind.
      let behind = false
      for (const chunk of chunks) {
        got += chunk.byteLength
        if (got > (size as number))
          throw new MeshError('MESH_UNAVAILABLE', 'the peer sent more than the file', { mesh })
        hasher.hash.update(chunk)
        if (!out.write(chunk)) behind = true
      }
      if (behind) {
        // What is on its way meanwhile is held, then dispatched on resume.
        const pausable = stream.readStatus === 'readable'
        if (pausable) stream.pause()
        await once(out, 'drain', { signal })
        if (pausable && stream.readStatus === 'paused') stream.resume()
      }
      if (got === size) break
    }
    if (size === undefined || got < size)
      throw new MeshError('MESH_UNAVAILABLE', 'the transfer was cut', {
        mesh,
        got,
        ...(size !== undefined ? { size } : {}),
      })
    // Every byte written (to the page cache; the sync comes after, off this path).
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
    // Readable from here on; synced, renamed and indexed in the background (`stored`).
    const stored = store.commitPartial(cid, size)
    stored.catch(() => {})
    await stream.close({ signal }).catch(() => {})
    return { size, resumedAt: offset, stored }
  } catch (err) {
    failed = err
    stream.abort(err as Error)
    throw signal.aborted && !(err instanceof MeshError)
      ? new MeshError('MESH_UNAVAILABLE', 'the transfer was cut', { mesh, got })
      : err
  } finally {
    signal.removeEventListener('abort', onAbort)
    if (failed !== undefined && !out.closed) {
      // What arrived stays for the next try (a refused hash has discarded it already).
      out.end()
      await once(out, 'close').catch(() => {})
      if (failed instanceof TooLargeError) await store.discardPartial(cid)
      else await store.syncPartial(cid).catch(() => {})
    }
  }
}

/** The size an answer's header gives, or the refusal it carries. */
function checkHeader(header: unknown, mesh: string, offset: number, max: number): number {
  const head = header as
    | { ok?: { size?: unknown }; error?: { code?: unknown; message?: unknown } }
    | undefined
  if (head?.error !== undefined) throw peerRefusal(mesh, head.error)
  const size = head?.ok?.size
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw new MeshError('MESH_UNAVAILABLE', 'the peer sent an answer that is not one', { mesh })
  if (size > max) throw new TooLargeError(`the file is over this node's ${max} bytes`, { size, mesh })
  if (offset > size) throw new MeshError('MESH_UNAVAILABLE', 'the peer holds less than was fetched', { mesh })
  return size
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
