import type * as DecodingT from 'lib0/decoding'
import type { WebSocket } from 'ws'
import type * as AwarenessProtocolT from 'y-protocols/awareness'
import type { Session, SessionService } from '../auth/index.ts'
import { MeshError } from '../errors.ts'
import { type Logger, silentLogger } from '../log.ts'
import { awarenessProtocol, decoding, encoding, syncProtocol } from './lazy-yjs.ts' // issue 15: loaded on first use
import type { Room, RoomOrigin } from './room.ts'
import { type ClientBinding, pseudonymClientId, ROOM_LIMITS } from './room-entries.ts'
import type { RoomManager } from './room-manager.ts'
import { YjsTickets, type YjsTicketsInit } from './yjs-tickets.ts'

/**
 * The y-websocket endpoint (SPEC §3): `ws://HOST/yjs/<roomId>?token=<ticket>`, which is
 * what the stock `new WebsocketProvider('ws://HOST/yjs', roomId, doc, {params: {token}})`
 * connects to. The token is a ticket from `POST /api/rooms/:id/yjs-ticket` (bearer
 * session) → `{ticket, expiresAt}`: single-use, bound to that room and session, good for
 * 60 s; a session token is refused (4401), so no URL ever carries one. A client fetches
 * a fresh ticket for each connection, reconnects included. A connection ends (4401)
 * when its session is logged out or expires.
 *
 * Wire protocol (as y-websocket-server's utils): every frame is a varUint message
 * type then its payload — 0 sync (y-protocols SyncStep1 / SyncStep2 / Update), 1
 * awareness. The server sends SyncStep1 and the current awareness states on connect.
 *
 * Unlike y-websocket-server, the server trusts no client: every SyncStep2/Update
 * goes through `validateUpdate` as `{kind: 'client'}`; a refused one is dropped
 * (message by message), logged and recorded, never applied; a read-only member's
 * writes are dropped. Awareness: a connection may only set the state of its own
 * client id (the first it announces, or one bound to its session in the room),
 * states are JSON objects of at most 4 KiB, and the server stamps each with the
 * session's `did` and shows it to everyone else (other sessions, peer meshes) under a
 * random id no mesh can bind (room-entries.ts, committed ids): a client's Yjs id is
 * first seen with its binding, in the update of its first write. Close codes: 4401
 * bad or missing token, 4403 not a member (or no such room), 1008 on a flood before
 * authentication.
 */
export interface YjsWebsocketInit {
  rooms: RoomManager
  /** Whose logouts close their sockets and void their tickets. */
  sessions: Pick<SessionService, 'onRevoked'>
  logger?: Logger
  /** Interval of liveness pings; default 30 s. */
  pingIntervalMs?: number
  tickets?: YjsTicketsInit
}

const MESSAGE_SYNC = 0
const MESSAGE_AWARENESS = 1
const MAX_QUEUED_BEFORE_AUTH = 64
const MAX_AWARENESS_IDS_PER_CONNECTION = 4
/** Largest frame a client may send (the websocket's maxPayload). */
export const YJS_MAX_FRAME_BYTES = 1024 * 1024

interface Connection {
  socket: WebSocket
  /** The TCP socket under `socket`, corked for a turn of sends (see `#send`); absent in some tests. */
  raw: Corkable | undefined
  /** Whether `raw` is corked until the end of this turn. */
  corked: boolean
  session: Session
  awarenessIds: Set<number>
  /**
   * Its awareness client ids as everyone else sees them: a client's Yjs id must not be
   * known before the node binds it with the client's first write (else a peer or
   * another session could bind it first and own the client's writes).
   */
  pseudonyms: Map<number, number>
}

// setTimeout's longest delay; a session ending later is closed by the revocation path only.
const MAX_TIMER_MS = 2 ** 31 - 1

interface Hub {
  room: Room
  awareness: AwarenessProtocolT.Awareness
  connections: Set<Connection>
  onUpdate: (update: Uint8Array, origin: unknown) => void
  onAwareness: (change: { added: number[]; updated: number[]; removed: number[] }) => void
  /** Lazy rooms: the room stays loaded while a client is connected. */
  release: () => void
}

/**
 * The y-websocket endpoint without its transport: the tickets, the connections per
 * room, and the closing of a logged-out session's sockets. The HTTP layer
 * (src/http/routes/yjs.ts) issues tickets through it and hands it each upgraded socket.
 */
export interface YjsEndpoint {
  /** A single-use ticket for `roomId` under `session` (membership is checked when it is used). */
  issueTicket(session: Session, roomId: string): { ticket: string; expiresAt: string }
  /**
   * Serves one upgraded socket of `/yjs/<roomId>?token=<token>`; `raw` is the TCP socket
   * under it (the upgrade request's), whose writes of one turn then go out as one.
   */
  handle(socket: WebSocket, roomId: string, token: unknown, raw?: Corkable): void
  /** Closes every socket (1001) and stops listening to the sessions. */
  close(): void
}

export function createYjsEndpoint(init: YjsWebsocketInit): YjsEndpoint {
  const tickets = new YjsTickets(init.tickets)
  const server = new YjsWebsocketServer(init, tickets)
  const unsubscribe = init.sessions.onRevoked(({ id }) => {
    tickets.revokeSession(id)
    server.closeSession(id, 'logged out')
  })
  return {
    issueTicket: (session, roomId) => tickets.issue(session, roomId),
    handle: (socket, roomId, token, raw) => server.handle(socket, roomId, token, raw),
    close: () => {
      unsubscribe()
      server.close()
    },
  }
}

class YjsWebsocketServer {
  readonly #init: YjsWebsocketInit
  readonly #tickets: YjsTickets
  readonly #hubs = new Map<Room, Hub>()
  readonly #log: Logger
  readonly #pinger: ReturnType<typeof setInterval>
  readonly #alive = new WeakMap<WebSocket, boolean>()
  readonly #sockets = new Set<WebSocket>()

  constructor(init: YjsWebsocketInit, tickets: YjsTickets) {
    this.#init = init
    this.#tickets = tickets
    this.#log = (init.logger ?? silentLogger()).child({ area: 'rooms.yjs' })
    this.#pinger = setInterval(() => this.#ping(), init.pingIntervalMs ?? 30_000)
    this.#pinger.unref()
  }

  close(): void {
    clearInterval(this.#pinger)
    for (const socket of this.#sockets) socket.close(1001, 'server closing')
  }

  /** Closes every connection opened under session `id` (4401). */
  closeSession(id: string, reason: string): void {
    for (const hub of this.#hubs.values()) {
      for (const conn of hub.connections) if (conn.session.id === id) conn.socket.close(4401, reason)
    }
  }

  handle(socket: WebSocket, roomId: string, token: unknown, raw?: Corkable): void {
    this.#sockets.add(socket)
    this.#alive.set(socket, true)
    socket.on('pong', () => this.#alive.set(socket, true))
    const queued: Uint8Array[] = []
    let conn: Connection | undefined
    let hub: Hub | undefined
    let expiry: ReturnType<typeof setTimeout> | undefined
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      const bytes = toBytes(data)
      if (conn === undefined || hub === undefined) {
        if (queued.length >= MAX_QUEUED_BEFORE_AUTH)
          socket.close(1008, 'too many messages before authentication')
        else queued.push(bytes)
        return
      }
      this.#onMessage(hub, conn, bytes)
    })
    socket.on('close', () => {
      this.#sockets.delete(socket)
      clearTimeout(expiry)
      if (conn !== undefined && hub !== undefined) this.#leave(hub, conn)
    })
    socket.on('error', (err) => this.#log.debug({ event: 'rooms.yjs.socket_error', err }, 'socket error'))

    void (async () => {
      const ticket = typeof token === 'string' ? this.#tickets.redeem(token) : undefined
      if (ticket === undefined) {
        this.#log.debug({ event: 'rooms.yjs.bad_ticket', room: roomId }, 'unknown, spent or expired ticket')
        socket.close(4401, 'unauthenticated')
        return
      }
      if (ticket.roomId !== roomId) {
        socket.close(4403, 'ticket is for another room')
        return
      }
      const session = ticket.session
      let room: Room
      try {
        ;({ room } = await this.#init.rooms.roomFor(roomId, session.did))
      } catch (err) {
        if (err instanceof MeshError && err.status < 500) socket.close(4403, 'forbidden')
        else {
          this.#log.error({ event: 'rooms.yjs.load_failed', room: roomId, err }, 'could not load room')
          socket.close(1011, 'internal error')
        }
        return
      }
      if (socket.readyState !== socket.OPEN) return
      hub = this.#join(room)
      conn = { socket, raw, corked: false, session, awarenessIds: new Set(), pseudonyms: new Map() }
      hub.connections.add(conn)
      const left = Date.parse(session.expiresAt) - Date.now()
      if (left < MAX_TIMER_MS) {
        expiry = setTimeout(() => socket.close(4401, 'session expired'), Math.max(0, left))
        expiry.unref()
      }
      const step1 = encoding.createEncoder()
      encoding.writeVarUint(step1, MESSAGE_SYNC)
      syncProtocol.writeSyncStep1(step1, room.doc)
      this.#send(conn, encoding.toUint8Array(step1))
      const states = [...hub.awareness.getStates().keys()]
      if (states.length > 0) {
        this.#send(conn, awarenessMessage(awarenessProtocol.encodeAwarenessUpdate(hub.awareness, states)))
      }
      for (const bytes of queued.splice(0)) this.#onMessage(hub, conn, bytes)
    })()
  }

  #join(room: Room): Hub {
    let hub = this.#hubs.get(room)
    if (hub !== undefined) return hub
    // The room's awareness: states from peer meshes reach local clients, and back.
    const awareness = room.awareness
    const connections = new Set<Connection>()
    const onUpdate = (update: Uint8Array, origin: unknown) => {
      const source = (origin as RoomOrigin | null) ?? null
      // Framed once, and only when some connection gets it (issue 15, alpha15: a lone writer's own
      // updates go to no one here).
      let message: Uint8Array | undefined
      // The source clients get only what they lack (ClientApplyResult.nodeUpdate; a turn's, wsturn15).
      const sources = source?.source === 'client' ? source.connections : undefined
      for (const c of connections) {
        if (sources?.has(c) === true) continue
        message ??= syncMessage(update)
        this.#send(c, message)
      }
    }
    room.doc.on('update', onUpdate)
    const onAwareness = ({
      added,
      updated,
      removed,
    }: {
      added: number[]
      updated: number[]
      removed: number[]
    }) => {
      const changed = [...added, ...updated, ...removed]
      const message = awarenessMessage(awarenessProtocol.encodeAwarenessUpdate(awareness, changed))
      // Like y-websocket-server, to every connection: the client's keep-alive depends on it.
      // A connection gets its own states back under its own ids, not as a stranger.
      for (const c of connections) {
        const own = changed.some((id) => isPseudonymOf(c, id))
        this.#send(c, own ? awarenessMessage(unmasked(c, awareness, changed)) : message)
      }
    }
    awareness.on('update', onAwareness)
    hub = { room, awareness, connections, onUpdate, onAwareness, release: room.hold() }
    this.#hubs.set(room, hub)
    return hub
  }

  #leave(hub: Hub, conn: Connection): void {
    hub.connections.delete(conn)
    if (conn.pseudonyms.size > 0)
      awarenessProtocol.removeAwarenessStates(hub.awareness, [...conn.pseudonyms.values()], conn)
    if (hub.connections.size === 0) {
      hub.room.doc.off('update', hub.onUpdate)
      hub.awareness.off('update', hub.onAwareness)
      hub.release()
      this.#hubs.delete(hub.room)
    }
  }

  #onMessage(hub: Hub, conn: Connection, bytes: Uint8Array): void {
    try {
      const decoder = decoding.createDecoder(bytes)
      const type = decoding.readVarUint(decoder)
      if (type === MESSAGE_SYNC) this.#onSync(hub, conn, decoder)
      else if (type === MESSAGE_AWARENESS) this.#onAwareness(hub, conn, decoding.readVarUint8Array(decoder))
      else this.#log.debug({ event: 'rooms.yjs.unknown_message', type }, 'unknown message type dropped')
    } catch (err) {
      this.#log.debug({ event: 'rooms.yjs.malformed', room: hub.room.id, err }, 'malformed frame dropped')
    }
  }

  #onSync(hub: Hub, conn: Connection, decoder: DecodingT.Decoder): void {
    const room = hub.room
    const kind = decoding.readVarUint(decoder)
    if (kind === syncProtocol.messageYjsSyncStep1) {
      const sv = decoding.readVarUint8Array(decoder)
      const encoder = encoding.createEncoder()
      encoding.writeVarUint(encoder, MESSAGE_SYNC)
      syncProtocol.writeSyncStep2(encoder, room.doc, sv)
      this.#send(conn, encoding.toUint8Array(encoder))
      return
    }
    if (kind !== syncProtocol.messageYjsSyncStep2 && kind !== syncProtocol.messageYjsUpdate) return
    const update = decoding.readVarUint8Array(decoder)
    const member = room.member(conn.session.did)
    if (member === undefined || member.mesh !== this.#init.rooms.ownMesh || member.role === 'read-only') {
      if (update.byteLength > 2) {
        this.#log.info(
          { event: 'rooms.yjs.read_only_write', room: room.id, did: conn.session.did },
          'write dropped',
        )
      }
      return
    }
    const sender = { kind: 'client', did: conn.session.did, mesh: this.#init.rooms.ownMesh } as const
    room.applyUpdate(update, sender, conn).then(
      (result) => {
        if (result.error !== undefined) {
          this.#log.info(
            {
              event: 'rooms.yjs.write_refused',
              room: room.id,
              did: conn.session.did,
              reason: result.error.details.reason,
            },
            result.error.message,
          )
          return
        }
        if (result.nodeUpdate !== undefined && result.nodeUpdate.byteLength > 2) {
          this.#send(conn, syncMessage(result.nodeUpdate))
        }
      },
      (err: unknown) => {
        this.#log.error({ event: 'rooms.yjs.apply_failed', room: room.id, err }, 'client update failed')
      },
    )
  }

  #onAwareness(hub: Hub, conn: Connection, update: Uint8Array): void {
    const decoder = decoding.createDecoder(update)
    const count = decoding.readVarUint(decoder)
    const encoder = encoding.createEncoder()
    const kept: Array<{ client: number; clock: number; state: string }> = []
    const clients = hub.room.doc.getMap('clients')
    for (let i = 0; i < count && i < 64; i++) {
      const client = decoding.readVarUint(decoder)
      const clock = decoding.readVarUint(decoder)
      const text = decoding.readVarString(decoder)
      const refuse = (reason: string) => {
        this.#init.rooms.recordRefusal(
          hub.room.id,
          { kind: 'client', did: conn.session.did, mesh: this.#init.rooms.ownMesh },
          new MeshError('MESH_UPDATE_REJECTED', `awareness state dropped: ${reason}`, {
            reason: `awareness-${reason}`,
            client,
          }),
          'room.awareness',
        )
      }
      if (!conn.awarenessIds.has(client)) {
        const bound = clients.get(String(client)) as ClientBinding | undefined
        const claimed = [...hub.connections].some((c) => c !== conn && c.awarenessIds.has(client))
        const foreign =
          bound !== undefined && (bound.mesh !== this.#init.rooms.ownMesh || bound.did !== conn.session.did)
        if (claimed || foreign || conn.awarenessIds.size >= MAX_AWARENESS_IDS_PER_CONNECTION) {
          refuse('impersonation')
          continue
        }
        conn.awarenessIds.add(client)
      }
      if (Buffer.byteLength(text) > ROOM_LIMITS.maxAwarenessBytes) {
        refuse('too-large')
        continue
      }
      let state: unknown
      try {
        state = JSON.parse(text)
      } catch {
        refuse('malformed')
        continue
      }
      if (state !== null && (typeof state !== 'object' || Array.isArray(state))) {
        refuse('malformed')
        continue
      }
      const stamped =
        state === null ? 'null' : JSON.stringify({ ...(state as object), did: conn.session.did })
      let shown = conn.pseudonyms.get(client)
      if (shown === undefined) {
        shown = pseudonymClientId()
        conn.pseudonyms.set(client, shown)
      }
      kept.push({ client: shown, clock, state: stamped })
    }
    if (kept.length === 0) return
    encoding.writeVarUint(encoder, kept.length)
    for (const k of kept) {
      encoding.writeVarUint(encoder, k.client)
      encoding.writeVarUint(encoder, k.clock)
      encoding.writeVarString(encoder, k.state)
    }
    awarenessProtocol.applyAwarenessUpdate(hub.awareness, encoding.toUint8Array(encoder), conn)
  }

  #send(conn: Connection, message: Uint8Array): void {
    if (conn.socket.readyState !== conn.socket.OPEN) return
    // Issue 15 (beta15): the peer frames of one turn apply one after another, each an update
    // sent to every reader as a frame of its own, each a write (a syscall, a TCP segment) of
    // its own: a reader's frames of a turn are written together, at the end of the turn.
    const raw = conn.raw
    if (raw !== undefined && !conn.corked) {
      conn.corked = true
      raw.cork()
      process.nextTick(() => {
        conn.corked = false
        raw.uncork()
      })
    }
    conn.socket.send(message, (err) => {
      if (err !== undefined && err !== null) conn.socket.close()
    })
  }

  #ping(): void {
    for (const socket of this.#sockets) {
      if (this.#alive.get(socket) === false) {
        socket.terminate()
        continue
      }
      this.#alive.set(socket, false)
      socket.ping()
    }
  }
}

/** What of a TCP socket `#send` uses (node:net Socket). */
export interface Corkable {
  cork(): void
  uncork(): void
}

function isPseudonymOf(conn: Connection, id: number): boolean {
  for (const shown of conn.pseudonyms.values()) if (shown === id) return true
  return false
}

/** The awareness update of `ids` with the connection's own states under its own client ids. */
function unmasked(conn: Connection, awareness: AwarenessProtocolT.Awareness, ids: number[]): Uint8Array {
  const real = new Map<number, number>()
  for (const [client, shown] of conn.pseudonyms) real.set(shown, client)
  const decoder = decoding.createDecoder(awarenessProtocol.encodeAwarenessUpdate(awareness, ids))
  const encoder = encoding.createEncoder()
  const count = decoding.readVarUint(decoder)
  encoding.writeVarUint(encoder, count)
  for (let i = 0; i < count; i++) {
    const id = decoding.readVarUint(decoder)
    encoding.writeVarUint(encoder, real.get(id) ?? id)
    encoding.writeVarUint(encoder, decoding.readVarUint(decoder))
    encoding.writeVarString(encoder, decoding.readVarString(decoder))
  }
  return encoding.toUint8Array(encoder)
}

function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data))
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

function syncMessage(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_SYNC)
  syncProtocol.writeUpdate(encoder, update)
  return encoding.toUint8Array(encoder)
}

function awarenessMessage(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_AWARENESS)
  encoding.writeVarUint8Array(encoder, update)
  return encoding.toUint8Array(encoder)
}
