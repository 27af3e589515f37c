/**
 * Cold start: from spawning `mesh start` on a freshly initialised data dir to its
 * ready line, against the same for a bare js-libp2p process (peer-node.ts) with the
 * same transports and kad-dht. Runs alternate (mesh, peer, mesh, …) after one
 * unmeasured warm-up each, so disk cache and machine load hit both alike.
 *
 * `node.restart_ms` is the second start of the same data dir, against the same peer
 * runs. `mesh init` issues the mesh's root delegation and the members' credentials
 * (architect, built-in agents), so a first start issues nothing either; a data dir an
 * older init made gets them from its first start (ucanto and did-jwt-vc load for them).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { createInterface } from 'node:readline'
import { type MeshProcess, runMesh, startMesh } from '../lib/processes.ts'
import type { NodePool } from './nodes.ts'
import { emit, fmt, median, note, type ResultName } from './report.ts'

const PEER_SCRIPT = new URL('./peer-node.ts', import.meta.url).pathname
/** The `mesh` command as installed (package.json `bin`), not src/cli/main.ts run by hand. */
const MESH_COMMAND = new URL('../../bin/mesh.js', import.meta.url).pathname

export const COLD_START_NAMES: ResultName[] = [
  { name: 'node.cold_start_ms', unit: 'ms', better: 'lower' },
  { name: 'node.restart_ms', unit: 'ms', better: 'lower' }, // issue 15: a start that is not the first
  // issue 15: CPU to the ready line, steadier than wall-clock on a loaded machine
  { name: 'node.cold_start_cpu_ms', unit: 'ms', better: 'lower' },
  { name: 'node.restart_cpu_ms', unit: 'ms', better: 'lower' },
]

export interface ColdStartInit {
  /** Measured runs of each; default 5. */
  runs?: number
  /** Where data dirs and the keystore go (removed by the pool). */
  pool: NodePool
}

export async function benchColdStart(init: ColdStartInit): Promise<void> {
  const runs = init.runs ?? 5
  const root = await init.pool.dir('mesh-bench-start-')
  const env = { MESH_KEYSTORE: join(root, 'keys'), MESH_LOG_LEVEL: 'warn' }
  const mesh: Start[] = []
  const restart: Start[] = []
  const peer: Start[] = []
  for (let i = 0; i <= runs; i++) {
    const dataDir = join(root, `mesh-${i}`)
    const init = await runMesh(['init', '--data', dataDir, '--name', basename(dataDir)], env)
    if (init.code !== 0) throw new Error(`mesh init failed: ${init.stderr}`)
    const meshMs = await meshStart(dataDir, env)
    const restartMs = await meshStart(dataDir, env)
    const peerMs = await peerColdStart()
    // run 0 warms the disk cache and the compile cache of both
    if (i === 0) continue
    mesh.push(meshMs)
    restart.push(restartMs)
    peer.push(peerMs)
  }
  const wall = (starts: Start[]): number[] => starts.map((s) => s.wallMs)
  const cpu = (starts: Start[]): number[] => starts.map((s) => s.cpuMs)
  note(
    `cold start mesh ${fmt(wall(mesh))} ms | restart ${fmt(wall(restart))} ms | bare libp2p ${fmt(wall(peer))} ms; ` +
      `CPU to ready: mesh ${fmt(cpu(mesh))} | restart ${fmt(cpu(restart))} | bare ${fmt(cpu(peer))} ms`,
  )
  emit('node.cold_start_ms', median(wall(mesh)), 'ms', median(wall(peer)), 2, 'lower')
  emit('node.restart_ms', median(wall(restart)), 'ms', median(wall(peer)), 2, 'lower')
  emit('node.cold_start_cpu_ms', median(cpu(mesh)), 'ms', median(cpu(peer)), 2, 'lower')
  emit('node.restart_cpu_ms', median(cpu(restart)), 'ms', median(cpu(peer)), 2, 'lower')
}

/** One start: wall ms to the ready line, and the process's CPU ms (all threads) by then. */
interface Start {
  wallMs: number
  cpuMs: number
}

/** CPU ms a process has used so far: utime + stime from Linux's /proc (NaN elsewhere). */
function cpuMsOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    // utime and stime are fields 14 and 15 of stat: indexes 11 and 12 after ") "; in USER_HZ (100)
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return Number.NaN
  }
}

async function meshStart(dataDir: string, env: NodeJS.ProcessEnv): Promise<Start> {
  const t0 = performance.now()
  let proc: MeshProcess | undefined
  try {
    proc = await startMesh(
      ['start', '--data', dataDir, '--http', '127.0.0.1:0'],
      env,
      undefined,
      MESH_COMMAND,
    )
    return { wallMs: performance.now() - t0, cpuMs: cpuMsOf(proc.proc.pid) }
  } finally {
    await proc?.stop('SIGTERM')
  }
}

async function peerColdStart(timeoutMs = 30_000): Promise<Start> {
  const t0 = performance.now()
  // The same V8 compile cache the `mesh` entry turns on (src/cli/main.ts), so both sides
  // are measured as they start the second time onwards.
  const proc = spawn(process.execPath, [PEER_SCRIPT], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_COMPILE_CACHE: join(tmpdir(), 'node-compile-cache') },
  })
  const exited = once(proc, 'exit')
  try {
    await readyLine(proc, timeoutMs)
    return { wallMs: performance.now() - t0, cpuMs: cpuMsOf(proc.pid) }
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
    await exited
  }
}

function readyLine(proc: ChildProcess, timeoutMs: number): Promise<string> {
  let stderr = ''
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream })
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`peer: no ready line in ${timeoutMs} ms: ${stderr}`)),
      timeoutMs,
    )
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`peer exited with ${code} before ready: ${stderr}`))
    })
    lines.on('line', (line) => {
      if (!line.startsWith('ready ')) return
      clearTimeout(timer)
      resolve(line)
    })
  })
}
