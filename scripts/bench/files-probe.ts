/**
 * A probe for issue 18's files bench (not a bench row; run by hand:
 * `node scripts/bench/files-probe.ts`): against the bench's server process, per round,
 * (1) the raw source stream, (2) `/mesh/files` read by a bare reader (request frame, then
 * the stream's iterator; no hash, no disk: the serving side alone), (3) `fetchFromPeer`.
 * Prints MiB/s, how many 'message' events carried the 16 MiB, (2) the ms to the first
 * byte and (3) the ms until stored for good (synced, renamed: after the fetch returned). Splits the gap between the serving side and the fetching side.
 * At the end, medians, with the CPU (ms) each mode cost the server process and this one per
 * transfer: on 2 shared cores the ratio follows the CPU both ends spend (/work/notes/files18d.md).
 *
 * files18e: `node scripts/bench/files-probe.ts ROUNDS MODES` runs only the modes named (e.g.
 * `20 fetch`): the garbage collection one mode's allocations start lands in whichever round
 * runs next, so a mode's own GC cost shows only when it runs alone. On Linux it also prints,
 * per mode, each side's CPU per transfer by thread (/proc, 10 ms ticks, means): main, the GC
 * workers (V8's concurrent marking: about a third of raw's CPU too), libuv (disk reads, writes).
 *
 * files18f: `node scripts/bench/files-probe.ts ROUNDS MODES MIB` moves a file of MIB MiB (16 by
 * default; the bench's second row is 64). Each fetch round also prints, after its MiB/s and
 * ms until stored, its first byte in, last byte in, pauses and ms paused, and their medians
 * with the tail (last byte in → readable) at the end.
 */
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { BlobStore, FILES_PROTOCOL, fetchFromPeer } from '../../src/files/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { createMeshLibp2p } from '../../src/p2p/index.ts'
import { CPU_PROTOCOL, SERVER, serverReady } from './files.ts'

const SOURCE = '/mesh-bench/source/1.0.0'
/** The file's size: `argv[4]` MiB (16 by default). */
const mib = Number(process.argv[4] ?? 16)
const BYTES = mib * 1024 * 1024
const enc = new TextEncoder()
function lp(b: Uint8Array) {
  const out = new Uint8Array(b.length + 1)
  out[0] = b.length
  out.set(b, 1)
  return out
}

async function rawRound(connection: Connection) {
  const t0 = performance.now()
  const stream = await connection.newStream(SOURCE)
  let read = 0,
    n = 0
  for await (const chunk of stream) {
    n++
    read += chunk.byteLength
    if (read >= BYTES) break
  }
  await stream.close().catch(() => {})
  return [performance.now() - t0, n]
}
async function dumbFiles(connection: Connection, cid: string) {
  const t0 = performance.now()
  const stream = await connection.newStream(FILES_PROTOCOL)
  stream.send(lp(enc.encode(JSON.stringify({ room: 'bench-room-0001', cid, offset: 0 }))))
  let read = 0,
    n = 0,
    first = 0
  for await (const chunk of stream) {
    if (!first) first = performance.now() - t0
    n++
    read += chunk.byteLength
    if (read >= BYTES) break
  }
  await stream.close().catch(() => {})
  return [performance.now() - t0, n, first]
}
const root = await mkdtemp(join(tmpdir(), 'probe-'))
const server = spawn(process.execPath, [SERVER, String(BYTES), join(root, 'server')], {
  stdio: ['ignore', 'pipe', 'inherit'],
})
const fetcher = await createMeshLibp2p({ key: Ed25519KeyPair.generate() })
const { cid, listen } = await serverReady(server)
const into = new BlobStore({ dir: join(root, 'fetcher'), cacheBytes: 4 * BYTES, maxFileBytes: BYTES })
await into.start()
const connection = await fetcher.dial(multiaddr(listen))
/**
 * files18f: the phases of a fetch, seen from outside it (ms from its start): its first and last
 * 'message' (first and last byte in), the pauses it made (disk a buffer behind) and how long
 * they held the stream, and the tail from the last byte in to readable (the last bytes hashed
 * and written, the partial closed, the stream closed). Wall time, not CPU: it shows what a
 * fetch waits for that the raw stream does not (/work/notes/files18f.md).
 */
const phases = { t0: 0, first: 0, last: 0, pauses: 0, pausedMs: 0 }
const watched = async () => {
  const stream = await connection.newStream(FILES_PROTOCOL)
  stream.addEventListener('message', () => {
    phases.last = performance.now() - phases.t0
    if (phases.first === 0) phases.first = phases.last
  })
  const pause = stream.pause.bind(stream)
  const resume = stream.resume.bind(stream)
  let pausedAt = 0
  stream.pause = () => {
    phases.pauses++
    pausedAt = performance.now()
    pause()
  }
  stream.resume = () => {
    phases.pausedMs += performance.now() - pausedAt
    resume()
  }
  return stream
}
const fetch = async () => {
  await rm(join(into.dir, cid), { force: true })
  const t0 = performance.now()
  Object.assign(phases, { t0, first: 0, last: 0, pauses: 0, pausedMs: 0 })
  const { stored } = await fetchFromPeer(
    { store: into, dial: watched },
    'bench',
    { room: 'bench-room-0001', cid },
    AbortSignal.timeout(120_000),
  )
  const readable = performance.now() - t0
  await stored
  runs['fetch first byte ms']?.push(phases.first)
  runs['fetch last byte ms']?.push(phases.last)
  runs['fetch paused ms']?.push(phases.pausedMs)
  runs['fetch tail ms']?.push(readable - phases.last)
  return [readable, performance.now() - t0, phases.first, phases.last, phases.pauses, phases.pausedMs]
}
/** The server process's CPU so far, in ms. */
async function serverCpu(): Promise<number> {
  const stream = await connection.newStream(CPU_PROTOCOL)
  stream.send(new Uint8Array([1]))
  let text = ''
  for await (const chunk of stream) text += new TextDecoder().decode(chunk.subarray())
  await stream.close().catch(() => {})
  return Number(text) / 1000
}
/** CPU ms so far of process `pid`'s threads by kind (main, gc, libuv, other); empty off Linux. */
function threadCpu(pid: number | 'self'): Record<string, number> {
  const out: Record<string, number> = {}
  let tasks: string[] = []
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const task of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8')
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const kind =
        task === String(pid === 'self' ? process.pid : pid)
          ? 'main'
          : name.startsWith('V8')
            ? 'gc'
            : name.startsWith('libuv')
              ? 'libuv'
              : 'other'
      out[kind] = (out[kind] ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10
    } catch {
      // the thread ended meanwhile
    }
  }
  return out
}
/** Per mode and side: thread CPU summed over its rounds. */
const byThread: Record<string, Record<string, number>> = {}
const addThreads = (key: string, before: Record<string, number>, after: Record<string, number>) => {
  const sums = byThread[key] ?? {}
  byThread[key] = sums
  for (const [kind, ms] of Object.entries(after)) sums[kind] = (sums[kind] ?? 0) + ms - (before[kind] ?? 0)
}
/** Runs `round`, adding the CPU it cost the server and this process to `runs`. */
async function measured(name: string, round: () => Promise<number[]>): Promise<number[]> {
  const server0 = await serverCpu()
  const threads0 = [threadCpu(server.pid as number), threadCpu('self')] as const
  const own0 = process.cpuUsage()
  const result = await round()
  const own = process.cpuUsage(own0)
  runs[`${name} server CPU ms`]?.push((await serverCpu()) - server0)
  runs[`${name} fetcher CPU ms`]?.push((own.user + own.system) / 1000)
  addThreads(`${name} server`, threads0[0], threadCpu(server.pid as number))
  addThreads(`${name} fetcher`, threads0[1], threadCpu('self'))
  return result
}
const fmt = (r: number[]) =>
  `${(mib / ((r[0] as number) / 1000)).toFixed(1)} MiB/s ${r
    .slice(1)
    .map((x) => x.toFixed(0))
    .join(' ')}`
const runs: Record<string, number[]> = {
  raw: [],
  bare: [],
  fetch: [],
  'bare first byte ms': [],
  'fetch first byte ms': [],
  'fetch last byte ms': [],
  'fetch paused ms': [],
  'fetch tail ms': [],
}
for (const name of ['raw', 'bare', 'fetch'])
  for (const side of ['server', 'fetcher']) runs[`${name} ${side} CPU ms`] = []
const log = (name: string, r: number[]) => {
  runs[name]?.push(mib / ((r[0] as number) / 1000))
  console.log(name.padEnd(5), fmt(r))
}
const rounds = Number(process.argv[2] ?? 6)
const modes = (process.argv[3] ?? 'raw,bare,fetch').split(',')
for (let i = 0; i < rounds; i++) {
  if (modes.includes('raw')) log('raw', await measured('raw', () => rawRound(connection)))
  if (modes.includes('bare')) {
    const bare = await measured('bare', () => dumbFiles(connection, cid))
    runs['bare first byte ms']?.push(bare[2] as number)
    log('bare', bare)
  }
  if (modes.includes('fetch')) log('fetch', await measured('fetch', fetch))
}
for (const [name, values] of Object.entries(runs)) {
  if (values.length === 0) continue
  const sorted = values.sort((a, b) => a - b)
  console.log(`median ${name} ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)}`)
}
for (const [key, sums] of Object.entries(byThread)) {
  const per = (kind: string) => ((sums[kind] ?? 0) / rounds).toFixed(1)
  const total = Object.values(sums).reduce((a, b) => a + b, 0) / rounds
  console.log(
    `mean ${key} CPU ms by thread: ${total.toFixed(1)} = main ${per('main')} + gc ${per('gc')} + libuv ${per('libuv')} + other ${per('other')}`,
  )
}
await fetcher.stop()
server.kill('SIGTERM')
await rm(root, { recursive: true, force: true })
