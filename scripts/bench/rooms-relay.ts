/**
 * B1, `rooms.relay_msgs_per_s` and `rooms.post_to_visible_*_ms` (SPEC §14): messages
 * relayed mesh to mesh, side by side with a stock `@y/websocket-server` 0.1.1 and a
 * Hocuspocus 4 server relaying the same updates to the same readers.
 *
 * - The mesh: two real nodes (`mesh start`, each its own process, libp2p over TCP on
 *   loopback), connected and sharing one room homed at alpha. Posts go to alpha over
 *   HTTP (`POST /api/rooms/:id/messages` as its architect, 16 in flight); `readers` stock
 *   y-websocket clients read the room at beta (`/yjs`, a ticket each). Every update
 *   crosses alpha's seal and log, the link, and beta's validation, log and relay.
 * - The stock relays (each in its own process, bench/rooms-relay-server.ts): a writer
 *   client holding the room as beta's first reader held it applies the very updates
 *   that reader received from the mesh, 16 a macrotask; the same number of readers.
 * - `rooms.relay_msgs_per_s.r<N>.vs_y_websocket|.vs_hocuspocus`: messages ÷ seconds
 *   from the first post (write) until every reader holds every message; aims ≥ 1× the
 *   y-websocket server and ≥ 2× Hocuspocus.
 * - `rooms.post_to_visible_p50_ms|_p99_ms`: posts at alpha paced at `rate` a second
 *   for `seconds` (at most 32 in flight), each from when it was due until visible at
 *   beta's reader (one reader), against the aim of 10 ms (the baseline is that budget; the stock
 *   y-websocket figure for the same pacing, writer apply to reader, goes to the note).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import * as Y from 'yjs'
import { type HttpClient, signIn } from '../../src/cli/http-client.ts'
import { HumanKeystore } from '../../src/identity/index.ts'
import { type MeshProcess, runMesh, startMesh } from '../lib/processes.ts'
import type { NodePool } from './nodes.ts'
import { emit, note, percentile, type ResultName, sleep } from './report.ts'
import { body } from './rooms-fixture.ts'
import { runPaced } from './rooms-paced.ts'
import {
  connectReaders,
  hocuspocusClient,
  meshWriterClient,
  type RelayClient,
  timeout,
  yWebsocketClient,
} from './rooms-relay-clients.ts'

export function roomsRelayNames(readers = [1, 10]): ResultName[] {
  return [
    ...readers.flatMap((n): ResultName[] => [
      { name: `rooms.relay_msgs_per_s.r${n}.vs_y_websocket`, unit: 'msgs/s', better: 'higher' },
      { name: `rooms.relay_msgs_per_s.r${n}.vs_hocuspocus`, unit: 'msgs/s', better: 'higher' },
      { name: `rooms.relay_msgs_per_s.r${n}.ws_writer.vs_y_websocket`, unit: 'msgs/s', better: 'higher' },
      { name: `rooms.relay_msgs_per_s.r${n}.ws_writer.vs_hocuspocus`, unit: 'msgs/s', better: 'higher' },
    ]),
    { name: 'rooms.post_to_visible_p50_ms', unit: 'ms', better: 'lower' },
    { name: 'rooms.post_to_visible_p99_ms', unit: 'ms', better: 'lower' },
    { name: 'rooms.post_to_visible_p50_ms.ws_writer', unit: 'ms', better: 'lower' },
    { name: 'rooms.post_to_visible_p99_ms.ws_writer', unit: 'ms', better: 'lower' },
  ]
}

export interface RelayInit {
  pool: NodePool
  readers?: number[]
  /** Messages per throughput run; default 1000 × BENCH_ROOMS_SCALE. */
  messages?: number
  /** Paced posts a second for the latency run; default 1000. */
  rate?: number
  seconds?: number
}

interface Mesh {
  proc: MeshProcess
  api: HttpClient
  dir: string
  /** The mesh's architect, who posts. */
  architect: string
}

const WINDOW = 16
/** Untimed warm-up messages, over HTTP (within the session's 6,000 requests a minute) and from a y-websocket writer. */
const WARM_HTTP = 300
const WARM_WS = 1000
const MAX_POSTS = 32

export async function benchRoomsRelay(init: RelayInit): Promise<void> {
  const scale = Number(process.env.BENCH_ROOMS_SCALE ?? 1)
  const messages = init.messages ?? Math.round(1000 * scale)
  const root = await init.pool.dir('bench-rooms-relay-')
  const env = { MESH_KEYSTORE: join(root, 'keys'), MESH_LOG_LEVEL: 'warn' }
  const keystore = new HumanKeystore(env.MESH_KEYSTORE)
  const profile = process.env.BENCH_ROOMS_CPU_PROF
  const procs: MeshProcess[] = []
  // Each y-websocket provider listens for the process's exit.
  process.setMaxListeners(Math.max(process.getMaxListeners(), 64))
  const children: ChildProcess[] = []
  const clients: RelayClient[] = []
  // An interrupted bench exits (bench.ts) without this function's `finally`: no orphans.
  const killAll = (): void => {
    for (const child of [...children, ...procs.map((p) => p.proc)])
      if (child.exitCode === null) child.kill('SIGKILL')
  }
  process.once('exit', killAll)
  const cli = async <T>(m: Mesh, ...args: string[]): Promise<T> => {
    const res = await runMesh([...args, '--data', m.dir, '--json'], env)
    if (res.code !== 0) throw new Error(`mesh ${args.join(' ')}: ${res.stderr}`)
    return JSON.parse(res.stdout) as T
  }
  const startNode = async (name: string): Promise<Mesh> => {
    const dir = join(root, name)
    const made = await runMesh(['init', '--data', dir, '--name', name, '--json'], env)
    if (made.code !== 0) throw new Error(`mesh init: ${made.stderr}`)
    const proc = await startMesh(
      [
        'start',
        ...['--data', dir, '--http', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'],
        ...['--discovery-interval', '60000', '--probe-interval', '0'],
      ],
      // BENCH_ROOMS_CPU_PROF=<dir>: each mesh process writes a V8 CPU profile there on exit.
      profile === undefined ? env : { ...env, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profile}/${name}` },
    )
    procs.push(proc)
    const architect = await keystore.load(`${name}-architect`)
    return { proc, dir, architect: architect.did, api: await signIn(proc.http, architect) }
  }
  try {
    const [alpha, beta] = await Promise.all([startNode('alpha'), startNode('beta')])
    const connection = await cli<{ id: string }>(alpha, 'connect', beta.proc.listen[0] as string)
    await until(async () => (await connections(beta)).some((c) => c.id === connection.id), 'request arrives')
    await cli(beta, 'accept', connection.id)
    await until(
      async () => (await connections(alpha)).some((c) => c.id === connection.id && c.status === 'accepted'),
      'accepted',
    )
    // beta accepts every room shared with it at once (room lifecycle, SPEC §9)
    await cli(beta, 'policy', '--auto-accept-rooms', 'true')
    const { id: room } = await cli<{ id: string }>(alpha, 'room', 'create', 'bench')
    await cli(alpha, 'share', room, beta.proc.did as string)
    await until(
      async () =>
        (await beta.api.get<{ members: unknown[] }>(`/api/rooms/${room}/members`)).members.length >= 2,
      'beta adopts the room and joins',
    )
    note('rooms relay: two meshes share a room')
    const ticket = async (): Promise<Record<string, string>> => ({
      token: (await beta.api.post<{ ticket: string }>(`/api/rooms/${room}/yjs-ticket`, {})).ticket,
    })
    const meshWs = `${beta.proc.http.replace(/^http/, 'ws')}/yjs`
    /** Posts `first` … `first + count - 1` at alpha over HTTP, WINDOW in flight; each post's ms to its answer. */
    const postOverHttp = async (first: number, count: number): Promise<number[]> => {
      let posted = first
      const postMs: number[] = []
      await Promise.all(
        Array.from({ length: WINDOW }, async () => {
          while (posted < first + count) {
            const i = posted++
            const start = performance.now()
            await alpha.api.post(`/api/rooms/${room}/messages`, { body: body(i) })
            postMs.push(performance.now() - start)
          }
        }),
      )
      return postMs
    }

    // Untimed warm-up (issue 15): a process runs its first thousand messages on cold code
    // (V8 compiles as it goes), and a run of 1,000 is over in half a second. The rows measure
    // the steady rate: the meshes first carry WARM_HTTP posts and WARM_WS writer messages to a
    // reader at beta, and each stock relay then carries the very updates that reader received.
    const warm: { count: number; initial: Uint8Array; captured: Uint8Array[] } = {
      count: WARM_HTTP + WARM_WS,
      initial: new Uint8Array(),
      captured: [],
    }
    {
      const run = await connectReaders(1, warm.count, 0, async (doc, onSeen) =>
        yWebsocketClient(meshWs, room, doc, onSeen, await ticket()),
      )
      const reader = run.readers[0] as RelayClient
      clients.push(reader)
      warm.initial = Y.encodeStateAsUpdate(reader.doc)
      reader.doc.on('update', (update: Uint8Array) => warm.captured.push(update))
      await postOverHttp(0, WARM_HTTP)
      const writer = await meshWriter(alpha, room)
      // One message a millisecond, each its own turn at alpha (a client turn of 16 is one
      // update): the peer path at beta and alpha's link are warmed by a thousand updates, not
      // by the sixty or so the writer's pace of 16 a macrotask now makes of them.
      await writeOverWs(writer, WARM_HTTP, WARM_WS, 1)
      await run.done
      for (const c of [writer.client, reader]) c.close()
      note(`rooms relay: warmed up on ${warm.count} messages (${warm.captured.length} updates)`)
    }
    let next = warm.count

    for (const n of init.readers ?? [1, 10]) {
      // The mesh: posts at alpha, n readers at beta.
      const first = next
      next += messages
      const { readers, done } = await connectReaders(n, messages, first, async (doc, onSeen) =>
        yWebsocketClient(meshWs, room, doc, onSeen, await ticket()),
      )
      clients.push(...readers)
      const initial = Y.encodeStateAsUpdate((readers[0] as RelayClient).doc)
      const captured: Uint8Array[] = []
      ;(readers[0] as RelayClient).doc.on('update', (update: Uint8Array) => captured.push(update))
      await settled([alpha, beta])
      const cpu0 = [alpha, beta].map(processCpuMs)
      const t0 = performance.now()
      const postMs = await postOverHttp(first, messages)
      await done
      const mesh = messages / ((performance.now() - t0) / 1000)
      const [alphaCpu, betaCpu] = [alpha, beta].map(
        (m, k) => (processCpuMs(m) - (cpu0[k] as number)) / messages,
      )
      for (const r of readers) r.close()

      const stock: Record<string, number> = {}
      for (const kind of ['y-websocket', 'hocuspocus'] as const) {
        const port = await relayServer(kind, children)
        const url = `ws://127.0.0.1:${port}`
        const connect = (doc: Y.Doc, onSeen: () => void): RelayClient =>
          kind === 'y-websocket'
            ? yWebsocketClient(url, room, doc, onSeen)
            : hocuspocusClient(url, room, doc, onSeen)
        const writerDoc = new Y.Doc()
        Y.applyUpdate(writerDoc, warm.initial)
        const writer = connect(writerDoc, () => {})
        clients.push(writer)
        await writer.synced
        const side = await connectReaders(n, messages, first, async (doc, onSeen) => connect(doc, onSeen))
        clients.push(...side.readers)
        // The mesh's warm-up, relayed as beta relayed it (untimed), then what the earlier runs
        // added, in one update: the relay holds the room as beta's reader did at t0.
        await applyAll(writerDoc, warm.captured)
        await side.hold(0, warm.count)
        Y.applyUpdate(writerDoc, initial)
        await side.hold(warm.count, first - warm.count)
        const t1 = performance.now()
        await applyAll(writerDoc, captured)
        await side.done
        stock[kind] = messages / ((performance.now() - t1) / 1000)
        for (const r of [writer, ...side.readers]) r.close()
        await stopRelays(children)
      }
      note(
        `rooms relay, ${n} reader(s), ${messages} messages in ${captured.length} updates (msgs/s): mesh ${Math.round(mesh)}, ` +
          `y-websocket ${Math.round(stock['y-websocket'] as number)}, hocuspocus ${Math.round(stock.hocuspocus as number)}; ` +
          `CPU per message: alpha ${alphaCpu?.toFixed(2)} ms, beta ${betaCpu?.toFixed(2)} ms; ` +
          `a post's answer (durable at alpha) p50 ${percentile(postMs, 50).toFixed(1)} ms, ` +
          `p99 ${percentile(postMs, 99).toFixed(1)} ms`,
      )
      emit(
        `rooms.relay_msgs_per_s.r${n}.vs_y_websocket`,
        mesh,
        'msgs/s',
        stock['y-websocket'] as number,
        1,
        'higher',
      )
      emit(
        `rooms.relay_msgs_per_s.r${n}.vs_hocuspocus`,
        mesh,
        'msgs/s',
        stock.hocuspocus as number,
        2,
        'higher',
      )

      // The same messages written as the stock relays' writer writes them: a y-websocket
      // client at alpha (the architect's session), 16 entries a macrotask, no answers.
      const wsFirst = next
      next += messages
      const wsRun = await connectReaders(n, messages, wsFirst, async (doc, onSeen) =>
        yWebsocketClient(meshWs, room, doc, onSeen, await ticket()),
      )
      clients.push(...wsRun.readers)
      const writer = await meshWriter(alpha, room)
      await settled([alpha, beta])
      const cpu1 = [alpha, beta].map(processCpuMs)
      const t2 = performance.now()
      await writeOverWs(writer, wsFirst, messages)
      await wsRun.done
      const viaWs = messages / ((performance.now() - t2) / 1000)
      const [alphaWsCpu, betaWsCpu] = [alpha, beta].map(
        (m, k) => (processCpuMs(m) - (cpu1[k] as number)) / messages,
      )
      for (const c of [writer.client, ...wsRun.readers]) c.close()
      note(
        `rooms relay, ${n} reader(s), a y-websocket writer at alpha: mesh ${Math.round(viaWs)} msgs/s; ` +
          `CPU per message: alpha ${alphaWsCpu?.toFixed(2)} ms, beta ${betaWsCpu?.toFixed(2)} ms`,
      )
      emit(
        `rooms.relay_msgs_per_s.r${n}.ws_writer.vs_y_websocket`,
        viaWs,
        'msgs/s',
        stock['y-websocket'] as number,
        1,
        'higher',
      )
      emit(
        `rooms.relay_msgs_per_s.r${n}.ws_writer.vs_hocuspocus`,
        viaWs,
        'msgs/s',
        stock.hocuspocus as number,
        2,
        'higher',
      )
    }

    // Post to visible at a paced rate, one reader (bench/rooms-paced.ts).
    const rate = init.rate ?? 1000
    const count = Math.round(rate * (init.seconds ?? 3))
    const first = next
    const paced = { room, first, count, rate, readerUrl: meshWs }
    // Each post is due at t0 + i/rate and timed from then (a late start counts as latency);
    // at most MAX_POSTS in flight (the node takes 64 connections an address).
    await settled([alpha, beta])
    const pacedCpu = [alpha, beta].map(processCpuMs) // issue 15 (p99): CPU per paced message
    const http = await runPaced({
      ...paced,
      kind: 'http',
      readerParams: await ticket(),
      baseUrl: alpha.proc.http,
      token: alpha.api.token as string,
      maxInFlight: MAX_POSTS,
    })
    const fromSent = http.fromSent ?? []
    note(
      `rooms post→visible at ${rate}/s for ${count} posts (achieved ${Math.round(http.achieved)}/s): ` +
        `p50 ${percentile(http.latencies, 50).toFixed(1)} ms, p99 ${percentile(http.latencies, 99).toFixed(1)} ms ` +
        `from when due; p50 ${percentile(fromSent, 50).toFixed(1)} ms, p99 ${percentile(fromSent, 99).toFixed(1)} ms ` +
        `from when sent; ${cpuPerMessage([alpha, beta], pacedCpu, count)}`,
    )
    const stockUrl = `ws://127.0.0.1:${await relayServer('y-websocket', children)}`
    const stock = await runPaced({
      ...paced,
      kind: 'stock',
      readerUrl: stockUrl,
      entries: http.entries ?? [],
    })
    await stopRelays(children)
    note(
      `rooms post→visible, stock y-websocket, the same ${count} entries set by a writer at ${rate}/s: ` +
        `p50 ${percentile(stock.latencies, 50).toFixed(1)} ms, p99 ${percentile(stock.latencies, 99).toFixed(1)} ms`,
    )
    emit('rooms.post_to_visible_p50_ms', percentile(http.latencies, 50), 'ms', 10, 1, 'lower')
    emit('rooms.post_to_visible_p99_ms', percentile(http.latencies, 99), 'ms', 10, 1, 'lower')

    // The same pace, written by a y-websocket client at alpha, each entry from when it was set.
    await settled([alpha, beta])
    const wsPacedCpu = [alpha, beta].map(processCpuMs)
    const ws = await runPaced({
      ...paced,
      first: next + count,
      kind: 'ws',
      readerParams: await ticket(),
      writerUrl: `${alpha.proc.http.replace(/^http/, 'ws')}/yjs`,
      writerToken: (await alpha.api.post<{ ticket: string }>(`/api/rooms/${room}/yjs-ticket`, {})).ticket,
      author: alpha.architect,
      authorMesh: alpha.proc.did as string,
    })
    note(
      `rooms post→visible at ${rate}/s, a y-websocket writer at alpha: ` +
        `p50 ${percentile(ws.latencies, 50).toFixed(1)} ms, p99 ${percentile(ws.latencies, 99).toFixed(1)} ms; ` +
        cpuPerMessage([alpha, beta], wsPacedCpu, count),
    )
    emit('rooms.post_to_visible_p50_ms.ws_writer', percentile(ws.latencies, 50), 'ms', 10, 1, 'lower')
    emit('rooms.post_to_visible_p99_ms.ws_writer', percentile(ws.latencies, 99), 'ms', 10, 1, 'lower')
  } finally {
    for (const c of clients) c.close()
    await stopRelays(children)
    await Promise.all(procs.map((p) => p.stop('SIGTERM')))
    process.off('exit', killAll)
  }

  async function connections(m: Mesh): Promise<Array<{ id: string; status: string }>> {
    return m.api.get('/api/connections')
  }
}

/**
 * Sets messages `first` … `first + count - 1` through `writer`, WINDOW a macrotask, waiting for
 * no answer; or, given `everyMs`, one message every `everyMs` milliseconds.
 */
async function writeOverWs(
  writer: { post(i: number): void },
  first: number,
  count: number,
  everyMs?: number,
): Promise<void> {
  const step = everyMs === undefined ? WINDOW : 1
  for (let i = 0; i < count; i += step) {
    for (let k = i; k < Math.min(count, i + step); k++) writer.post(first + k)
    await (everyMs === undefined ? new Promise((resolve) => setImmediate(resolve)) : sleep(everyMs))
  }
}

/** Applies each update to `doc` on its own (the writer sends each as its own frame, as beta sent them), WINDOW a macrotask. */
async function applyAll(doc: Y.Doc, updates: Uint8Array[]): Promise<void> {
  for (let i = 0; i < updates.length; i += WINDOW) {
    for (const update of updates.slice(i, i + WINDOW)) Y.applyUpdate(doc, update)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/**
 * A y-websocket client at `home` writing as its architect: `post(i)` sets message `#i`
 * as the console's replica would, one entry a transaction (one update a frame).
 */
async function meshWriter(home: Mesh, room: string): Promise<{ client: RelayClient; post(i: number): void }> {
  const token = (await home.api.post<{ ticket: string }>(`/api/rooms/${room}/yjs-ticket`, {})).ticket
  return meshWriterClient(
    `${home.proc.http.replace(/^http/, 'ws')}/yjs`,
    room,
    token,
    home.architect,
    home.proc.did as string,
  )
}

async function until(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/**
 * Waits until neither mesh process is still busy with the run before (its log compaction,
 * LevelDB's, GC, the last fsyncs): at most `SETTLE_BUSY_MS` of CPU each in a
 * `SETTLE_WINDOW_MS` window, or `SETTLE_MAX_MS` in all. Otherwise a fast run's trailing
 * work is counted in the next run's rate and CPU a message.
 */
async function settled(meshes: Mesh[]): Promise<void> {
  const end = performance.now() + SETTLE_MAX_MS
  let before = meshes.map(processCpuMs)
  while (performance.now() < end) {
    await sleep(SETTLE_WINDOW_MS)
    const now = meshes.map(processCpuMs)
    if (now.every((cpu, k) => !(cpu - (before[k] as number) > SETTLE_BUSY_MS))) return
    before = now
  }
}

const SETTLE_WINDOW_MS = 200
const SETTLE_BUSY_MS = 20
const SETTLE_MAX_MS = 5_000

/** CPU ms a mesh process has used so far (Linux /proc; NaN elsewhere). */
function processCpuMs(m: Mesh): number {
  try {
    const fields = readFileSync(`/proc/${m.proc.proc.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    // utime and stime: fields 14 and 15 of stat, indexes 11 and 12 after ") " (field 3 is index 0).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS
  } catch {
    return Number.NaN
  }
}

/** `CPU per message: alpha … ms, beta … ms` since `before` (processCpuMs of each), over `count` messages. */
function cpuPerMessage(meshes: Mesh[], before: number[], count: number): string {
  const [a, b] = meshes.map((m, k) => ((processCpuMs(m) - (before[k] as number)) / count).toFixed(2))
  return `CPU per message: alpha ${a} ms, beta ${b} ms`
}

/** Linux's USER_HZ, what /proc/<pid>/stat counts CPU time in. */
const CLOCK_TICKS = 100

/** Ends every stock relay process still running (one at a time runs). */
async function stopRelays(children: ChildProcess[]): Promise<void> {
  const live = children.filter((child) => child.exitCode === null && child.signalCode === null)
  for (const child of live) child.kill('SIGTERM')
  await Promise.all(live.map((child) => once(child, 'exit')))
}

/** Starts a stock relay process (bench/rooms-relay-server.ts); its port once ready. */
async function relayServer(kind: string, children: ChildProcess[]): Promise<number> {
  const script = new URL('./rooms-relay-server.ts', import.meta.url).pathname
  const child = spawn(process.execPath, [script, kind], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const [line] = (await Promise.race([once(lines, 'line'), timeout(15_000, `${kind} ready`)])) as [string]
  return Number(line.split(' ')[1])
}
