import type { Stream } from '@libp2p/interface'
import { type LengthPrefixedStream, lpStream, streamPair } from '@libp2p/utils'
import { BadRequestError, ConflictError, MeshError, NotConnectedError } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import { lazyValidator } from '../schema.ts'
import { createEnvelope, type Envelope, type EnvelopeVerifier, encodeEnvelope } from './envelope.ts'
import type { HttpPeerBook, HttpRoute, PeekedEnvelope } from './http-federation.ts'
import type { RateLimiter } from './rate-limiter.ts'

/**
 * Room sync over plain HTTP (SPEC §12): the `/mesh/rooms/1.0.0` frames of one link,
 * carried in signed envelopes posted to `/federation/send` — the same frames, the same
 * backfill chunks, every update checked by the same replicator as over libp2p, because
 * the link on each side is an ordinary room link whose stream is a tunnel:
 *
 * ```
 * poster → server   envelope{type: rooms.frames, protocol: /mesh/rooms/1.0.0,
 *                            body: {frames: [base64url frame…], close?: true}}
 * server → poster   envelope{type: rooms.frames, body: {inReplyTo, frames: [base64url frame…], close?: true}}
 *                or envelope{type: rooms.error,  body: {inReplyTo, code, message}}
 * ```
 *
 * A frame is one `/mesh/rooms` frame without its length prefix (sync-protocol.ts). The
 * poster (the side that cannot be reached, or a phase-1 peer) sends what its link wrote
 * and takes in the reply what the server's link wrote since the last poll: a SyncStep1
 * (state vector) is answered with the backfill frame and the SyncStep2 chunks, then
 * live updates follow. Polling again at once while frames flow, every `pollIntervalMs`
 * otherwise. A server tunnel not polled for `idleMs` closes; `close: true` closes it now.
 */
export const ROOM_FRAMES_TYPE = 'rooms.frames'
export const ROOM_ERROR_TYPE = 'rooms.error'

export interface HttpRoomsLimits {
  /** Frames per POST; default 256. */
  maxFrames: number
  /** Frame bytes per POST (before base64url); default 1 MiB. */
  maxBatchBytes: number
  /** Bytes waiting for the peer's next poll before the tunnel closes; default 64 MiB. */
  maxQueuedBytes: number
}

export const HTTP_ROOMS_LIMITS: HttpRoomsLimits = {
  maxFrames: 256,
  maxBatchBytes: 1024 * 1024,
  maxQueuedBytes: 64 * 1024 * 1024,
}

/** Largest body of a rooms.frames POST: the batch in base64url and the envelope around it. */
export const HTTP_ROOMS_MAX_BODY = Math.ceil((HTTP_ROOMS_LIMITS.maxBatchBytes * 4) / 3) + 64 * 1024

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['frames'],
  properties: {
    frames: {
      type: 'array',
      maxItems: HTTP_ROOMS_LIMITS.maxFrames,
      items: { type: 'string', maxLength: HTTP_ROOMS_MAX_BODY, pattern: '^[A-Za-z0-9_-]*$' },
    },
    close: { const: true },
    inReplyTo: { type: 'string', maxLength: 64 },
  },
} as const
const validateBody = lazyValidator<{ frames: string[]; close?: true; inReplyTo?: string }>(bodySchema)

export interface HttpRoomsComponents {
  key: () => Ed25519KeyPair
  /** Verifies rooms envelopes (protocol `/mesh/rooms/1.0.0`, size `HTTP_ROOMS_MAX_BODY`). */
  envelopes: Pick<EnvelopeVerifier, 'verify' | 'commit' | 'release'>
  limiter: Pick<RateLimiter, 'consume'>
  peers: Pick<HttpPeerBook, 'get'>
  route: Pick<HttpRoute, 'post'>
  /** The room sync: a link on a tunnel, the peers wanting one. */
  rooms: () =>
    | {
        attachLink(key: string, stream: Stream, initiator: string): Promise<boolean>
        unlinkedPeers(): Array<{ peer: string; key: string }>
      }
    | undefined
  /** Whether libp2p holds a connection to the key now (then the tunnel gives way to libp2p). */
  libp2pConnected: (key: string) => boolean
  logger?: Logger
}

export interface HttpRoomsInit {
  /** The rooms protocol id (`/mesh/rooms/1.0.0`). */
  protocol: string
  /** Time between polls while nothing flows; default 500 ms. */
  pollIntervalMs?: number
  /** A peer without a link this long gets a tunnel (when it has an HTTP base); default 4 000 ms. */
  graceMs?: number
  /** A server tunnel not polled this long closes; default 30 000 ms. */
  idleMs?: number
  /** How long the server waits for frames to answer with; default 150 ms. */
  replyWaitMs?: number
  now?: () => number
}

interface Tunnel {
  key: string
  peer: string
  role: 'client' | 'server'
  /** Our end of the pair: what the link writes comes out here; what the peer sent goes in here. */
  end: Stream
  lp: LengthPrefixedStream<Stream>
  out: Uint8Array[]
  outBytes: number
  closed: boolean
  lastSeen: number
  /** Wakes whoever waits for frames to send. */
  wake: (() => void) | undefined
}

/** The HTTP tunnels of room links: the client side's polling and the server side's answers. */
export class HttpRooms {
  readonly #c: HttpRoomsComponents
  readonly #init: HttpRoomsInit
  readonly #now: () => number
  readonly #log: Logger
  readonly #tunnels = new Map<string, Tunnel>()
  readonly #unlinkedSince = new Map<string, number>()
  /** When a client tunnel to a peer last failed, or the peer last polled us (by key): no new client tunnel for a while. */
  readonly #quietUntil = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined
  #stopping = new AbortController()

  constructor(components: HttpRoomsComponents, init: HttpRoomsInit) {
    this.#c = components
    this.#init = init
    this.#now = init.now ?? Date.now
    this.#log = components.logger ?? silentLogger()
  }

  start(): void {
    if (this.#timer !== undefined) return
    this.#stopping = new AbortController()
    this.#timer = setInterval(() => this.#sweep(), Math.max(250, this.#init.pollIntervalMs ?? 500))
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#stopping.abort(new Error('stopping'))
    for (const t of [...this.#tunnels.values()]) this.#close(t, 'stopping')
  }

  /** Peers (by key) with a tunnel now, and its role. */
  tunnels(): Map<string, 'client' | 'server'> {
    return new Map([...this.#tunnels.values()].map((t) => [t.key, t.role]))
  }

  /** The server side: one POST of frames from `peeked.origin`; returns the signed reply. */
  async receive(bytes: Uint8Array, peeked: PeekedEnvelope): Promise<Uint8Array> {
    let env: Envelope | undefined
    try {
      this.#c.limiter.consume(peeked.origin)
      env = await this.#c.envelopes.verify(bytes, { remoteDid: peeked.origin })
      await this.#c.envelopes.commit(env)
      if (env.type !== ROOM_FRAMES_TYPE) {
        throw new BadRequestError(`unexpected rooms message ${env.type}`, { type: env.type })
      }
      const body = checkFramesBody(env.body)
      let tunnel = this.#tunnels.get(env.origin)
      if (tunnel !== undefined && tunnel.role === 'client') {
        // Both sides polled: the link manager keeps one link (the first key's), the other side gives way.
        if (env.origin > this.#c.key().did)
          throw new ConflictError('this mesh polls you', { reason: 'crossed' })
        this.#close(tunnel, 'crossed')
        tunnel = undefined
      }
      if (body.close === true) {
        if (tunnel !== undefined) this.#close(tunnel, 'closed by peer')
        return this.#reply(env, ROOM_FRAMES_TYPE, { frames: [], close: true })
      }
      if (tunnel === undefined || tunnel.closed) tunnel = await this.#open(env.origin, 'server')
      tunnel.lastSeen = this.#now()
      this.#quietUntil.set(env.origin, tunnel.lastSeen + (this.#init.idleMs ?? 30_000))
      await this.#write(tunnel, body.frames)
      await this.#waitForFrames(tunnel, this.#init.replyWaitMs ?? 150)
      const frames = this.#drain(tunnel)
      return this.#reply(env, ROOM_FRAMES_TYPE, {
        frames,
        ...(tunnel.closed ? { close: true } : {}),
      })
    } catch (err) {
      const error = err instanceof MeshError ? err : new MeshError('MESH_INTERNAL', 'internal error')
      if (!(err instanceof MeshError)) {
        this.#log.error({ event: 'rooms.http.receive_failed', peer: peeked.origin, err }, 'rooms POST failed')
      }
      return this.#reply(env ?? { id: '', origin: peeked.origin }, ROOM_ERROR_TYPE, {
        code: error.code,
        message: error.message.slice(0, 1024),
        details: error.details,
      })
    }
  }

  /** Opens client tunnels to peers without a link, and gives way to libp2p when it connects. */
  #sweep(): void {
    const rooms = this.#c.rooms()
    if (rooms === undefined) return
    const now = this.#now()
    const self = this.#c.key().did
    for (const t of [...this.#tunnels.values()]) {
      if (t.role === 'server' && now - t.lastSeen > (this.#init.idleMs ?? 30_000)) this.#close(t, 'idle')
      if (t.role === 'client' && this.#c.libp2pConnected(t.key)) {
        this.#log.info({ event: 'rooms.http.back_to_libp2p', peer: t.peer }, 'libp2p reaches the peer again')
        void this.#post(t, [], true).catch(() => {})
        this.#close(t, 'libp2p')
      }
    }
    const wanting = new Set<string>()
    for (const { peer, key } of rooms.unlinkedPeers()) {
      wanting.add(peer)
      if (this.#tunnels.has(key) || this.#c.libp2pConnected(key)) continue
      if ((this.#quietUntil.get(key) ?? 0) > now) continue
      const since = this.#unlinkedSince.get(peer) ?? now
      this.#unlinkedSince.set(peer, since)
      // The mesh whose key sorts first opens first; the other waits longer (crossing polls).
      const grace = (this.#init.graceMs ?? 4000) * (self < key ? 1 : 3)
      if (now - since < grace) continue
      void this.#startClient(peer, key).catch((err: unknown) =>
        this.#log.warn({ event: 'rooms.http.tunnel_failed', peer, err }, 'HTTP tunnel failed'),
      )
    }
    for (const peer of [...this.#unlinkedSince.keys()])
      if (!wanting.has(peer)) this.#unlinkedSince.delete(peer)
  }

  async #startClient(peer: string, key: string): Promise<void> {
    const base = (await this.#c.peers.get(peer)) ?? (await this.#c.peers.get(key))
    if (base === undefined || this.#tunnels.has(key)) return
    this.#log.info({ event: 'rooms.http.tunnel', peer, http: base }, 'room link over HTTP')
    const tunnel = await this.#open(key, 'client', peer)
    void this.#poll(tunnel)
  }

  /** The client's loop: send what the link wrote, take what the peer's link wrote, again. */
  async #poll(t: Tunnel): Promise<void> {
    let failures = 0
    while (!t.closed && !this.#stopping.signal.aborted) {
      const sent = this.#drain(t)
      try {
        const { frames, close } = await this.#post(t, sent, false)
        failures = 0
        await this.#write(t, frames)
        if (close) {
          this.#close(t, 'closed by peer')
          return
        }
        if (sent.length > 0 || frames.length > 0) continue
      } catch (err) {
        if (t.closed || this.#stopping.signal.aborted) return
        failures++
        this.#log.debug({ event: 'rooms.http.poll_failed', peer: t.peer, err, failures }, 'poll failed')
        if (failures >= 3 || (err instanceof MeshError && err.code !== 'MESH_RATE_LIMITED')) {
          this.#quietUntil.set(t.key, this.#now() + (this.#init.idleMs ?? 30_000))
          this.#close(t, 'poll failed')
          return
        }
      }
      await this.#waitForFrames(t, this.#init.pollIntervalMs ?? 500)
    }
  }

  async #post(t: Tunnel, frames: string[], close: boolean): Promise<{ frames: string[]; close: boolean }> {
    const base = (await this.#c.peers.get(t.peer)) ?? (await this.#c.peers.get(t.key))
    if (base === undefined) throw new NotConnectedError('no HTTP base for the peer')
    const env = createEnvelope(this.#c.key(), {
      type: ROOM_FRAMES_TYPE,
      target: t.key,
      protocol: this.#init.protocol,
      body: { frames, ...(close ? { close: true } : {}) },
    })
    const replyBytes = await this.#c.route.post(base, ROOM_FRAMES_TYPE, encodeEnvelope(env), {
      signal: this.#stopping.signal,
      maxBytes: HTTP_ROOMS_MAX_BODY,
    })
    const reply = await this.#c.envelopes.verify(replyBytes, { remoteDid: t.key })
    await this.#c.envelopes.release(reply)
    const inReplyTo = (reply.body as { inReplyTo?: unknown }).inReplyTo
    if (inReplyTo !== env.id) throw new BadRequestError('the reply answers another message')
    if (reply.type === ROOM_ERROR_TYPE) {
      const b = reply.body as { code?: string; message?: string }
      throw new MeshError((b.code ?? 'MESH_INTERNAL') as 'MESH_INTERNAL', b.message ?? 'refused')
    }
    const body = checkFramesBody(reply.body)
    return { frames: body.frames, close: body.close === true }
  }

  async #open(key: string, role: 'client' | 'server', peer = key): Promise<Tunnel> {
    const rooms = this.#c.rooms()
    if (rooms === undefined) throw new NotConnectedError('room sync is not running')
    const [local, end] = await streamPair({ delay: 0 })
    const tunnel: Tunnel = {
      key,
      peer,
      role,
      end,
      lp: lpStream(end, { maxDataLength: HTTP_ROOMS_LIMITS.maxBatchBytes, maxBufferSize: 32 * 1024 * 1024 }),
      out: [],
      outBytes: 0,
      closed: false,
      lastSeen: this.#now(),
      wake: undefined,
    }
    this.#tunnels.set(key, tunnel)
    const initiator = role === 'client' ? this.#c.key().did : key
    if (!(await rooms.attachLink(key, local, initiator))) {
      this.#close(tunnel, 'refused')
      throw new NotConnectedError('no room link with this mesh over HTTP', { reason: 'link-refused' })
    }
    void this.#readLoop(tunnel)
    return tunnel
  }

  /** What the link writes, queued for the peer. */
  async #readLoop(t: Tunnel): Promise<void> {
    try {
      while (!t.closed) {
        const frame = (await t.lp.read()).subarray()
        t.out.push(frame)
        t.outBytes += frame.byteLength
        if (t.outBytes > HTTP_ROOMS_LIMITS.maxQueuedBytes) {
          this.#close(t, 'peer polls too slowly')
          return
        }
        t.wake?.()
      }
    } catch {
      this.#close(t, 'link closed')
    }
  }

  async #write(t: Tunnel, frames: string[]): Promise<void> {
    for (const f of frames) {
      if (t.closed) return
      await t.lp.write(Buffer.from(f, 'base64url'))
    }
  }

  #drain(t: Tunnel): string[] {
    const out: string[] = []
    let bytes = 0
    while (t.out.length > 0 && out.length < HTTP_ROOMS_LIMITS.maxFrames) {
      const next = t.out[0] as Uint8Array
      if (out.length > 0 && bytes + next.byteLength > HTTP_ROOMS_LIMITS.maxBatchBytes) break
      t.out.shift()
      t.outBytes -= next.byteLength
      bytes += next.byteLength
      out.push(Buffer.from(next).toString('base64url'))
    }
    return out
  }

  async #waitForFrames(t: Tunnel, ms: number): Promise<void> {
    if (t.out.length > 0 || t.closed) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      timer.unref()
      function done(): void {
        clearTimeout(timer)
        t.wake = undefined
        resolve()
      }
      t.wake = done
    })
  }

  #close(t: Tunnel, reason: string): void {
    if (t.closed) return
    t.closed = true
    t.wake?.()
    if (this.#tunnels.get(t.key) === t) this.#tunnels.delete(t.key)
    t.end.abort(new Error(reason))
    this.#log.info(
      { event: 'rooms.http.tunnel_closed', peer: t.peer, role: t.role, reason },
      'HTTP tunnel closed',
    )
  }

  #reply(to: Pick<Envelope, 'id' | 'origin'>, type: string, body: Record<string, unknown>): Uint8Array {
    return encodeEnvelope(
      createEnvelope(this.#c.key(), {
        type,
        target: to.origin,
        protocol: this.#init.protocol,
        body: { ...body, inReplyTo: to.id },
      }),
    )
  }
}

function checkFramesBody(body: unknown): { frames: string[]; close?: true } {
  if (!validateBody(body)) {
    const first = validateBody.errors?.[0]
    throw new BadRequestError(
      `invalid rooms.frames body: ${first?.instancePath || '/'} ${first?.message ?? ''}`.trim(),
    )
  }
  return body
}
