/**
 * The clients of `rooms.relay_msgs_per_s` (bench/rooms-relay.ts): readers that note
 * when each message becomes visible, on a stock y-websocket `WebsocketProvider` (the
 * mesh's `/yjs` endpoint, `@y/websocket-server`) or on a minimal client of the
 * Hocuspocus wire protocol (no provider package installed: each frame is the document
 * name, a message type and a y-protocols payload; an empty token authenticates a server
 * with no hook).
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as sync from 'y-protocols/sync'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { contentId, type MessageEntry } from '../../src/rooms/index.ts'
import { body } from './rooms-fixture.ts'

/** A Yjs document in a room, connected to a relay; `seen` holds when each message index arrived. */
export interface RelayClient {
  doc: Y.Doc
  /** Message index (the `#<i>` a body starts with) → performance.now() when it became visible. */
  seen: Map<number, number>
  synced: Promise<void>
  close(): void
}

/** Watches a doc's `messages` map: every new entry's index and when it appeared. */
export function watch(doc: Y.Doc, seen: Map<number, number>, onSeen: () => void): void {
  doc.getMap('messages').observe((event) => {
    const now = performance.now()
    for (const [key, change] of event.changes.keys) {
      if (change.action !== 'add') continue
      const entry = event.target.get(key) as { body?: unknown } | undefined
      const match = typeof entry?.body === 'string' ? /^#(\d+)/.exec(entry.body) : null
      if (match !== null && !seen.has(Number(match[1]))) seen.set(Number(match[1]), now)
    }
    onSeen()
  })
}

/** A stock y-websocket client of `serverUrl`/`room` (params: the mesh's ticket). */
export function yWebsocketClient(
  serverUrl: string,
  room: string,
  doc: Y.Doc,
  onSeen: () => void,
  params: Record<string, string> = {},
): RelayClient {
  const seen = new Map<number, number>()
  watch(doc, seen, onSeen)
  const provider = new WebsocketProvider(serverUrl, room, doc, {
    params,
    disableBc: true,
    maxBackoffTime: 500,
  })
  const synced = new Promise<void>((resolve) => {
    if (provider.synced) resolve()
    provider.once('sync', (isSynced: boolean) => {
      if (isSynced) resolve()
    })
  })
  return {
    doc,
    seen,
    synced,
    close: () => {
      provider.shouldConnect = false
      provider.destroy()
      doc.destroy()
    },
  }
}

const HOCUS = { sync: 0, auth: 2, syncReply: 4 } as const

/** A minimal Hocuspocus client (the frames `@hocuspocus/provider` sends) of document `name`. */
export function hocuspocusClient(url: string, name: string, doc: Y.Doc, onSeen: () => void): RelayClient {
  const seen = new Map<number, number>()
  watch(doc, seen, onSeen)
  const ws = new WebSocket(url)
  ws.binaryType = 'arraybuffer'
  const origin = {}
  const frame = (type: number, write: (encoder: encoding.Encoder) => void): void => {
    const encoder = encoding.createEncoder()
    encoding.writeVarString(encoder, name)
    encoding.writeVarUint(encoder, type)
    write(encoder)
    ws.send(encoding.toUint8Array(encoder))
  }
  let markSynced: () => void = () => {}
  const synced = new Promise<void>((resolve) => {
    markSynced = resolve
  })
  ws.addEventListener('open', () => {
    frame(HOCUS.auth, (e) => {
      encoding.writeVarUint(e, 0) // a token
      encoding.writeVarString(e, '')
    })
    frame(HOCUS.sync, (e) => sync.writeSyncStep1(e, doc))
  })
  ws.addEventListener('message', (event) => {
    const decoder = decoding.createDecoder(new Uint8Array(event.data as ArrayBuffer))
    decoding.readVarString(decoder)
    const type = decoding.readVarUint(decoder)
    if (type !== HOCUS.sync && type !== HOCUS.syncReply) return
    const reply = encoding.createEncoder()
    const kind = sync.readSyncMessage(decoder, reply, doc, origin)
    if (kind === sync.messageYjsSyncStep2) markSynced()
    if (encoding.length(reply) > 0)
      frame(HOCUS.syncReply, (e) => encoding.writeUint8Array(e, encoding.toUint8Array(reply)))
  })
  doc.on('update', (update: Uint8Array, from: unknown) => {
    if (from === origin || ws.readyState !== WebSocket.OPEN) return
    frame(HOCUS.sync, (e) => sync.writeUpdate(e, update))
  })
  return {
    doc,
    seen,
    synced,
    close: () => {
      ws.close()
      doc.destroy()
    },
  }
}

/**
 * `n` readers made by `make`, synced; `done` resolves once each holds messages
 * first … first + count - 1, `hold(f, c)` once each holds f … f + c - 1.
 */
export async function connectReaders(
  n: number,
  count: number,
  first: number,
  make: (doc: Y.Doc, onSeen: () => void) => Promise<RelayClient>,
): Promise<{
  readers: RelayClient[]
  done: Promise<void>
  hold(first: number, count: number): Promise<void>
}> {
  const readers: RelayClient[] = []
  const waiters = new Set<{ first: number; count: number; resolve: () => void }>()
  const check = (): void => {
    for (const w of waiters)
      if (readers.length === n && readers.every((r) => holds(r, w.first, w.count))) {
        waiters.delete(w)
        w.resolve()
      }
  }
  const hold = (f: number, c: number): Promise<void> => {
    const held = new Promise<void>((resolve) => waiters.add({ first: f, count: c, resolve }))
    check()
    return Promise.race([held, timeout(60_000, 'every reader holds every message')])
  }
  for (let k = 0; k < n; k++) readers.push(await make(new Y.Doc(), check))
  await Promise.all(readers.map((r) => r.synced))
  return { readers, done: hold(first, count), hold }
}

function holds(reader: RelayClient, first: number, count: number): boolean {
  if (reader.seen.size < count) return false
  for (let i = first; i < first + count; i++) if (!reader.seen.has(i)) return false
  return true
}

export function timeout(ms: number, what: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref())
}

/**
 * A y-websocket client of a mesh's `/yjs` (`url`, a ticket `token`) writing as `author` of
 * mesh `authorMesh`: `post(i)` sets message `#i` as the console's replica would, one entry
 * a transaction (one update a frame).
 */
export async function meshWriterClient(
  url: string,
  room: string,
  token: string,
  author: string,
  authorMesh: string,
): Promise<{ client: RelayClient; post(i: number): void }> {
  const client = yWebsocketClient(url, room, new Y.Doc(), () => {}, { token })
  await client.synced
  const messages = client.doc.getMap<MessageEntry>('messages')
  return {
    client,
    post: (i) => {
      const entry: MessageEntry = {
        v: 1,
        room,
        author,
        authorMesh,
        body: body(i),
        mentions: [],
        ts: Date.now(),
      }
      messages.set(contentId(entry), entry)
    },
  }
}
