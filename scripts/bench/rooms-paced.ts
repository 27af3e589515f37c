/**
 * The paced runs of B1 (`rooms.post_to_visible_*`, bench/rooms-relay.ts): a writer that
 * stamps when each message is due (or set) and a reader that stamps when it is visible,
 * in the bench's process, for the mesh (over HTTP, or a y-websocket writer) and for the
 * stock relay alike.
 *
 * Tried and dropped (issue 15, session 12): each run in a worker thread with a small young
 * generation, so that the stamps would not wait out the bench isolate's 35–50 ms
 * collections (tail15 found every ≥ p99 HTTP message of the least loaded runs in one). The
 * stock and y-websocket writer runs' p99 steadied, but the HTTP run's got worse (p50 from
 * when due 21–50 ms against 4.5–10, p99 169–220 against 60–90; 3 interleaved pairs, idle).
 */
import * as Y from 'yjs'
import { HttpClient } from '../../src/cli/http-client.ts'
import { sleep } from './report.ts'
import { body } from './rooms-fixture.ts'
import {
  connectReaders,
  meshWriterClient,
  type RelayClient,
  yWebsocketClient,
} from './rooms-relay-clients.ts'

/** Messages `first` … `first + count - 1`, written at `rate` a second, read at `readerUrl` (`/yjs` or a stock relay). */
interface Paced {
  room: string
  first: number
  count: number
  rate: number
  readerUrl: string
  /** The reader's query parameters (a mesh's ticket), none for a stock relay. */
  readerParams?: Record<string, string>
}

export type PacedRun =
  /** Posts over HTTP as the bearer of `token`, at most `maxInFlight` at once, each timed from when due. */
  | (Paced & { kind: 'http'; baseUrl: string; token: string; maxInFlight: number })
  /** A y-websocket writer at a mesh (`writerUrl`, a ticket `writerToken`), each timed from when set. */
  | (Paced & { kind: 'ws'; writerUrl: string; writerToken: string; author: string; authorMesh: string })
  /** A writer at a stock relay setting the very `entries` (key, value), each timed from when set. */
  | (Paced & { kind: 'stock'; entries: Array<[string, unknown]> })

export interface PacedResult {
  /** ms from when each message was due (http) or set (ws, stock) until the reader held it. */
  latencies: number[]
  /** http: ms from when each post was sent. */
  fromSent?: number[]
  /** Messages a second, from the first due until the last visible. */
  achieved: number
  /** http: what the reader holds of the run's messages (key, value), for the stock run to set. */
  entries?: Array<[string, unknown]>
}

/** Runs `run`: the writer and the reader in this process. */
export async function runPaced(run: PacedRun): Promise<PacedResult> {
  const { readers, done } = await connectReaders(1, run.count, run.first, async (doc, onSeen) =>
    yWebsocketClient(run.readerUrl, run.room, doc, onSeen, run.readerParams),
  )
  const reader = readers[0] as RelayClient
  const closing: RelayClient[] = [reader]
  try {
    let t0: number
    let written: Map<number, number> // message index → when it was due or set
    let sent: Map<number, number> | undefined
    if (run.kind === 'http') {
      const api = new HttpClient(run.baseUrl, run.token)
      const due = new Map<number, number>()
      const sentAt = new Map<number, number>()
      written = due
      sent = sentAt
      t0 = performance.now()
      let i = 0
      await Promise.all(
        Array.from({ length: run.maxInFlight }, async () => {
          while (i < run.count) {
            const k = i++
            const at = t0 + (k * 1000) / run.rate
            if (at > performance.now()) await sleep(at - performance.now())
            due.set(run.first + k, at)
            sentAt.set(run.first + k, performance.now())
            await api.post(`/api/rooms/${run.room}/messages`, { body: body(run.first + k) })
          }
        }),
      )
    } else {
      let write: (k: number) => void
      if (run.kind === 'ws') {
        const writer = await meshWriterClient(
          run.writerUrl,
          run.room,
          run.writerToken,
          run.author,
          run.authorMesh,
        )
        closing.push(writer.client)
        write = (k) => writer.post(run.first + k)
      } else {
        const doc = new Y.Doc()
        const writer = yWebsocketClient(run.readerUrl, run.room, doc, () => {})
        closing.push(writer)
        await writer.synced
        const messages = doc.getMap('messages')
        write = (k) => {
          const [key, value] = run.entries[k] as [string, unknown]
          messages.set(key, value)
        }
      }
      t0 = performance.now()
      written = await paced(run.count, run.rate, run.first, write)
    }
    await done
    const seen = reader.seen
    const since = (from: Map<number, number>) =>
      [...from].map(([index, at]) => (seen.get(index) as number) - at)
    const result: PacedResult = {
      latencies: since(written),
      achieved: run.count / ((Math.max(...seen.values()) - t0) / 1000),
    }
    if (sent !== undefined) result.fromSent = since(sent)
    if (run.kind === 'http') result.entries = entriesOf(reader.doc, run.first, run.count)
    return result
  } finally {
    for (const c of closing) c.close()
  }
}

/**
 * Calls `write(k)` for k = 0 … count - 1 at `rate` a second (several a millisecond when
 * the timer lags, as a steady writer would catch up); when each (index first + k) was written.
 */
async function paced(
  count: number,
  rate: number,
  first: number,
  write: (k: number) => void,
): Promise<Map<number, number>> {
  const set = new Map<number, number>()
  const t0 = performance.now()
  let k = 0
  while (k < count) {
    const due = Math.min(count, Math.floor(((performance.now() - t0) * rate) / 1000) + 1)
    for (; k < due; k++) {
      set.set(first + k, performance.now())
      write(k)
    }
    await sleep(1)
  }
  return set
}

/** The message entries `#first` … of `doc`, in index order. */
function entriesOf(doc: Y.Doc, first: number, count: number): Array<[string, unknown]> {
  const byIndex = new Map<number, [string, unknown]>()
  doc.getMap('messages').forEach((value, key) => {
    const index = Number(/^#(\d+)/.exec((value as { body: string }).body)?.[1])
    if (index >= first && index < first + count) byIndex.set(index, [key, value])
  })
  return [...byIndex].sort(([a], [b]) => a - b).map(([, entry]) => entry)
}
