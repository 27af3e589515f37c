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
const BYTES = 16 * 1024 * 1024
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
const into = new BlobStore({ dir: join(root, 'fetcher'), cacheBytes: 4 * BYTES })
await into.start()
const connection = await fetcher.dial(multiaddr(listen))
const fetch = async () => {
  await rm(join(into.dir, cid), { force: true })
  const t0 = performance.now()
  const { stored } = await fetchFromPeer(
    { store: into, dial: async () => connection.newStream(FILES_PROTOCOL) },
    'bench',
    { room: 'bench-room-0001', cid },
    AbortSignal.timeout(120_000),
  )
  const readable = performance.now() - t0
  await stored
  return [readable, performance.now() - t0]
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
const mib = 16
const fmt = (r: number[]) =>
  `${(mib / ((r[0] as number) / 1000)).toFixed(1)} MiB/s ${r
    .slice(1)
    .map((x) => x.toFixed(0))
    .join(' ')}`
const runs: Record<string, number[]> = { raw: [], bare: [], fetch: [], 'bare first byte ms': [] }
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
