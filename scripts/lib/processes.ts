import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'

const MESH_BIN = new URL('../../src/cli/main.ts', import.meta.url).pathname

/** A `mesh start` or `mesh registry` process, once it printed its ready line. */
export interface MeshProcess {
  proc: ChildProcess
  http: string
  did?: string
  peerId?: string
  listen: string[]
  /** Every JSON log line the process printed so far. */
  logs: Array<Record<string, unknown>>
  /** SIGTERM (clean) or SIGKILL (crash); resolves when the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>
}

/** Runs a `mesh` command to completion and returns its output. */
export async function runMesh(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [MESH_BIN, ...args], { env: { ...process.env, ...env } })
  let stdout = ''
  let stderr = ''
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const [code] = (await once(proc, 'exit')) as [number]
  return { code, stdout, stderr }
}

/**
 * Starts a long-running `mesh` command (or, with `bin`, another script that prints the
 * same ready line) and waits (up to `timeoutMs`) for its ready line.
 */
export async function startMesh(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 30_000,
  bin = MESH_BIN,
): Promise<MeshProcess> {
  const proc = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: Array<Record<string, unknown>> = []
  let stderr = ''
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream })
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ready line in ${timeoutMs} ms: ${stderr}`)),
      timeoutMs,
    )
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`mesh ${args[0]} exited with ${code} before ready: ${stderr}`))
    })
    lines.on('line', (line) => {
      if (line.startsWith('ready ')) {
        clearTimeout(timer)
        resolve(line)
        return
      }
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        // not a log line
      }
    })
  })
  const line = await ready
  const fields = Object.fromEntries(
    line
      .slice('ready '.length)
      .split(' ')
      .map((kv) => {
        const i = kv.indexOf('=')
        return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)]
      }),
  ) as Record<string, string>
  const exited = once(proc, 'exit')
  return {
    proc,
    http: fields.http as string,
    ...(fields.did ? { did: fields.did } : {}),
    ...(fields.peer ? { peerId: fields.peer } : {}),
    listen: fields.listen ? fields.listen.split(',') : [],
    logs,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      await exited
    },
  }
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 60_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value) return value
    } catch (err) {
      lastError = err
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`,
  )
}

export async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  return (await response.json()) as T
}
