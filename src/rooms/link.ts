import type { Stream } from '@libp2p/interface'
import { type LengthPrefixedStream, lpStream } from '@libp2p/utils'
import type { Logger } from '../log.ts'
import {
  encodeFrame,
  MESH_ROOMS_PROTOCOL_DEFLATE,
  ROOM_SYNC_LIMITS,
  type RoomFrame,
} from './sync-protocol.ts'

/** What a link tells its owner; every hook is called at most once per event, never after close. */
export interface LinkEvents {
  /** One frame read off the stream, undecoded; the next read waits for it. */
  frame: (link: Link, bytes: Uint8Array) => Promise<void>
  /** The link closes (before its stream is aborted): forget it. */
  closed: (link: Link, reason: string) => void
  /** The link fails (a write, a read, a hook): remember why, for the status view. */
  failed: (link: Link, err: unknown) => void
  /** A frame over the size limit arrived: the link closes (the length prefix cannot be trusted past it). */
  oversized: (link: Link) => void
}

export interface LinkComponents {
  events: LinkEvents
  /** Aborted when the room sync stops: pending reads and writes end. */
  signal: AbortSignal
  stats: { framesIn: number; framesOut: number }
  logger: Logger
}

export interface LinkInit {
  /** The peer mesh's identity. */
  peer: string
  /** The key the peer authenticated the stream with. */
  key: string
  /** The key of the side that opened the stream. */
  initiator: string
  stream: Stream
}

/**
 * A live update waiting for its link's flush, with its transaction's state vectors: the
 * update holds, per client whose clock moved, `from` … `to` (what the peer learns of it).
 */
export interface LiveUpdate {
  update: Uint8Array
  from: Map<number, number>
  to: Map<number, number>
}

interface Queued {
  bytes: Uint8Array
  onSent?: () => void
}

/**
 * One link with a peer mesh: one `/mesh/rooms` stream, its write queue (bounded by
 * `ROOM_SYNC_LIMITS.maxQueuedBytes`: a peer that reads too slowly loses the link) and
 * its read loop. What travels on it is the replicator's business.
 */
export class Link {
  /** The peer mesh's identity (re-keyed when its history is learned later). */
  peer: string
  readonly key: string
  readonly initiator: string
  readonly stream: Stream
  closed = false
  /** Applies from this link still running (the replicator bounds them). */
  inflight = 0
  /** Live updates per room, sent at the end of the tick. */
  readonly batch = new Map<string, LiveUpdate[]>()
  /** Rooms whose SyncStep1 from the peer was answered: live updates flow from then on. */
  readonly ready = new Set<string>()
  /** rooms cost (issue 15): the peer speaks /mesh/rooms/1.1.0, so catch-up chunks go deflated. */
  readonly deflate: boolean
  readonly #c: LinkComponents
  readonly #lp: LengthPrefixedStream<Stream>
  #queue: Queued[] = []
  #queuedBytes = 0
  #writing = false

  constructor(components: LinkComponents, init: LinkInit) {
    this.#c = components
    this.peer = init.peer
    this.key = init.key
    this.initiator = init.initiator
    this.stream = init.stream
    this.deflate = init.stream.protocol === MESH_ROOMS_PROTOCOL_DEFLATE
    this.#lp = lpStream(init.stream, {
      maxDataLength: ROOM_SYNC_LIMITS.maxFrameBytes,
      maxBufferSize: 32 * 1024 * 1024,
    })
  }

  /** Starts the read loop; it ends with the link. */
  start(): void {
    void this.#readLoop()
  }

  /** Queues a frame; `onSent` runs once it is written. */
  send(frame: RoomFrame, onSent?: () => void): void {
    if (this.closed) return
    const bytes = encodeFrame(frame)
    this.#queue.push({ bytes, ...(onSent !== undefined ? { onSent } : {}) })
    this.#queuedBytes += bytes.byteLength
    if (this.#queuedBytes > ROOM_SYNC_LIMITS.maxQueuedBytes) {
      this.fail(new Error('peer reads too slowly'))
      return
    }
    if (!this.#writing) void this.#drain()
  }

  close(reason: string, err?: Error): void {
    if (this.closed) return
    this.closed = true
    this.#c.events.closed(this, reason)
    this.#queue = []
    this.#queuedBytes = 0
    this.batch.clear()
    this.stream.abort(err ?? new Error(reason))
    this.#c.logger.info({ event: 'rooms.sync.link_closed', peer: this.peer, reason }, 'link closed')
  }

  fail(err: unknown): void {
    if (this.closed) return
    this.#c.logger.warn({ event: 'rooms.sync.link_failed', peer: this.peer, err }, 'link failed')
    this.#c.events.failed(this, err)
    this.close('error', err as Error)
  }

  async #drain(): Promise<void> {
    this.#writing = true
    try {
      while (!this.closed && this.#queue.length > 0) {
        const next = this.#queue.shift() as Queued
        this.#queuedBytes -= next.bytes.byteLength
        await this.#lp.write(next.bytes, { signal: this.#c.signal })
        this.#c.stats.framesOut++
        next.onSent?.()
      }
    } catch (err) {
      this.fail(err)
    } finally {
      this.#writing = false
    }
  }

  async #readLoop(): Promise<void> {
    try {
      while (!this.closed) {
        const data = await this.#lp.read({ signal: this.#c.signal })
        this.#c.stats.framesIn++
        await this.#c.events.frame(this, data.subarray())
      }
    } catch (err) {
      if (this.closed || this.#c.signal.aborted) return
      const name = (err as Error)?.name
      if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError') {
        this.#c.events.oversized(this)
        this.close('frame-too-large', err as Error)
        return
      }
      if (name === 'UnexpectedEOFError' || name === 'StreamResetError' || name === 'StreamClosedError') {
        this.close('closed by peer')
        return
      }
      this.fail(err)
    } finally {
      this.close('ended')
    }
  }
}
