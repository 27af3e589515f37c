import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'

const AGENT_BIN = new URL('../../examples/mention-agent/agent.ts', import.meta.url).pathname

/** The example agent (examples/mention-agent) as a child process, for the demo and the tests. */
export interface AgentProcess {
  proc: ChildProcess
  /** Every line it printed so far. */
  lines: string[]
  /** The first line, printed or to come, matching `pattern`; rejects if the agent exits first. */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>
  /** Its exit: [code, signal]. */
  exited: Promise<[number | null, NodeJS.Signals | null]>
  /** SIGTERM (the agent signs out and exits 0) or SIGKILL; resolves when it is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>
}

/** `node examples/mention-agent/agent.ts --node <node> --room <room> --key <key>`. */
export function startAgent(node: string, room: string, key: string): AgentProcess {
  const proc = spawn(process.execPath, [AGENT_BIN, '--node', node, '--room', room, '--key', key], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const lines: string[] = []
  const waiters = new Set<() => void>()
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    lines.push(line)
    for (const w of waiters) w()
  })
  const line = (pattern: RegExp, timeoutMs = 60_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const seen = () => lines.map((l) => pattern.exec(l)).find((m) => m !== null)
      const check = () => {
        const match = seen()
        if (match) done(() => resolve(match))
      }
      const fail = (why: string) => () =>
        reject(new Error(`agent ${why} ${pattern}: ${lines.join(' | ')} ${stderr}`))
      const timer = setTimeout(() => done(fail(`printed no line`)), timeoutMs)
      const onExit = () => {
        const match = seen()
        done(match ? () => resolve(match) : fail('exited before'))
      }
      const done = (then: () => void) => {
        clearTimeout(timer)
        waiters.delete(check)
        proc.off('exit', onExit)
        then()
      }
      waiters.add(check)
      proc.once('exit', onExit)
      check()
    })
  return {
    proc,
    lines,
    line,
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      await exited
    },
  }
}
