/**
 * The paced runs of B1 (`rooms.post_to_visible_*`, bench/rooms-relay.ts), each in a worker
 * thread of its own: the writer that stamps when each message is due and the reader that
 * stamps when it is visible.
 *
 * Why a worker (issue 15, tail15): run in the bench's own thread, the stamps were taken by
 * an isolate holding every earlier run's documents and updates, whose young-generation
 * collections (its reader's new structs all survive, so each collection copies its whole
 * young generation) paused it 35–50 ms every ≈ 0.5 s: every one of the HTTP row's ≥ p99
 * messages sat in such a pause in the least loaded runs, a stall of the measuring side,
 * not of the meshes. A worker starts with an empty heap and a small young generation
 * (`PACED_YOUNG_MB`), so its collections are short; the stock relay's paced run is measured
 * the same way.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
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

/** A worker's young generation, MiB (V8's default here is 3 × 64). */
const PACED_YOUNG_MB = 6

/** Runs `run` in a worker thread of its own; its result. */
export async function pacedInWorker(run: PacedRun): Promise<PacedResult> {
  const worker = new Worker(new URL(import.meta.url), {
    workerData: run,
    resourceLimits: { maxYoungGenerationSizeMb: PACED_YOUNG_MB },
  })
  return new Promise<PacedResult>((resolve, reject) => {
    worker.once('message', (result: PacedResult) => {
      resolve(result)
      void worker.terminate()
    })
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new Error(`paced worker exited with ${code} before its result`)))
  })
}

async function runPaced(run: PacedRun): Promise<PacedResult> {
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
      written = new Map()
      sent = new Map()
      t0 = performance.now()
      let i = 0
      await Promise.all(
        Array.from({ length: run.maxInFlight }, async () => {
          while (i < run.count) {
            const k = i++
            const due = t0 + (k * 1000) / run.rate
            if (due > performance.now()) await sleep(due - performance.now())
            written.set(run.first + k, due)
            sent?.set(run.first + k, performance.now())
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

if (!isMainThread && parentPort !== null) {
  const port = parentPort
  runPaced(workerData as PacedRun).then(
    (result) => port.postMessage(result),
    (err: unknown) => {
      throw err
    },
  )
}
