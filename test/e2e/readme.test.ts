/**
 * The README's walkthrough (the ```sh walkthrough block) runs as written (issue 14: a
 * README that cannot drift). Each line is a real `npx mesh …` through bash, in order:
 * - `/tmp/walk` and the fixed ports become a temp dir and free ports;
 * - a line ending in `&` starts a background process, ready once it prints `ready …`;
 *   `# ready: <a did> <an address>` names the did and the dialable address it printed;
 * - `# prints <x>` names what the line's `--json` answer says (`did` for a did, else `id`);
 * - `# until: text` runs the line again (a person would look again) until its answer
 *   holds the text; any other line must succeed the first time, but a refusal while the
 *   meshes are still busy with the line before (a 4xx code) is tried again too;
 * - every `<…>` is filled from an earlier line.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, it } from 'node:test'
import { freePort } from '../fixtures/e2e.ts'

const REPO = new URL('../..', import.meta.url).pathname
const PATIENCE_MS = 90_000

interface Line {
  command: string
  background: boolean
  ready?: [string, string]
  prints?: string
  until?: string
}

/** The walkthrough block's lines, with their annotations. */
export function walkthrough(readme: string): Line[] {
  const block = /```sh walkthrough\n([\s\S]*?)```/.exec(readme)?.[1]
  if (block === undefined) throw new Error('no ```sh walkthrough block in the README')
  return block
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((raw) => {
      const hash = raw.search(/\s#\s/)
      const comment = hash === -1 ? '' : raw.slice(hash).trim().replace(/^#\s*/, '')
      let command = (hash === -1 ? raw : raw.slice(0, hash)).trim()
      const background = command.endsWith('&')
      if (background) command = command.slice(0, -1).trim()
      const line: Line = { command, background }
      const ready = /^ready:\s*(<[^>]+>)\s+(<[^>]+>)/.exec(comment)
      if (ready) line.ready = [ready[1] as string, ready[2] as string]
      const prints = /^prints\s+(<[^>]+>)/.exec(comment)
      if (prints) line.prints = prints[1] as string
      const until = /^until:\s*(.+)$/.exec(comment)
      if (until) line.until = (until[1] as string).trim()
      return line
    })
}

/** The did (for a `<…did>`) or id of a `--json` answer, or of the first item of a list. */
function field(stdout: string, name: string): string | undefined {
  let answer: unknown
  try {
    answer = JSON.parse(stdout)
  } catch {
    return undefined
  }
  const first = (Array.isArray(answer) ? answer[0] : answer) as Record<string, unknown> | undefined
  const value = first?.[name.endsWith('did>') ? 'did' : 'id']
  return typeof value === 'string' ? value : undefined
}

describe('the README walkthrough', () => {
  it('runs as written, line by line', { timeout: 600_000 }, async (t) => {
    const readme = await readFile(join(REPO, 'README.md'), 'utf8')
    const lines = walkthrough(readme)
    assert.ok(lines.length >= 15, 'the walkthrough is there')
    const root = await mkdtemp(join(tmpdir(), 'mesh-readme-'))
    const background: ChildProcess[] = []
    t.after(async () => {
      await Promise.all(
        background.map(async (p) => {
          if (p.exitCode !== null || p.signalCode !== null) return
          p.kill('SIGTERM')
          await once(p, 'exit')
        }),
      )
      // `npx` is the process we hold; the node under it goes down a moment after it (it
      // watches its parent), and may still be closing its LevelDB: try again for a while.
      await rm(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 })
    })
    const ports = new Map<string, string>()
    for (const port of ['7800', '7701', '7702']) ports.set(port, String(await freePort()))
    const values = new Map<string, string>()
    const fill = (text: string) => {
      let out = text.replaceAll('/tmp/walk', root)
      for (const [from, to] of ports) out = out.replaceAll(`127.0.0.1:${from}`, `127.0.0.1:${to}`)
      return out.replace(/<[^>]+>/g, (name) => {
        const value = values.get(name)
        if (value === undefined) throw new Error(`${name} is used before a line printed it`)
        return value
      })
    }
    const env: NodeJS.ProcessEnv = { ...process.env, MESH_LOG_LEVEL: 'warn' }

    for (const line of lines) {
      const command = fill(line.command)
      if (command.startsWith('export ')) {
        const [name, value] = command.slice('export '.length).split('=') as [string, string]
        env[name] = value
        continue
      }
      if (line.background) {
        const proc = spawn('bash', ['-c', `exec ${command}`], {
          cwd: REPO,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        background.push(proc)
        let stderr = ''
        proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
        const ready = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no ready line from ${command}: ${stderr}`)),
            PATIENCE_MS,
          )
          proc.once('exit', (code) => reject(new Error(`${command} exited ${code}: ${stderr}`)))
          createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (l) => {
            if (!l.startsWith('ready ')) return
            clearTimeout(timer)
            resolve(l)
          })
        })
        if (line.ready !== undefined) {
          const field = (k: string) => new RegExp(`\\b${k}=(\\S+)`).exec(ready)?.[1]
          const did = field('did')
          const peer = field('peer')
          const listen = field('listen')?.split(',')[0]
          assert.ok(did && peer && listen, `a ready line with did, peer and listen: ${ready}`)
          values.set(line.ready[0], did)
          values.set(line.ready[1], listen.includes('/p2p/') ? listen : `${listen}/p2p/${peer}`)
        }
        continue
      }
      // The answer as JSON, unless the line sends it to a file (a token, as is).
      const redirected = command.includes(' > ')
      const run = redirected ? command : `${command} --json`
      const until = line.until === undefined ? undefined : fill(line.until)
      const deadline = Date.now() + PATIENCE_MS
      let last = ''
      for (;;) {
        const proc = spawn('bash', ['-c', run], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] })
        let stdout = ''
        let stderr = ''
        proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
        proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
        const [code] = (await once(proc, 'exit')) as [number | null]
        last = `exit ${code}\n${stdout}\n${stderr}`
        const busy =
          code !== 0 && /MESH_(NOT_FOUND|NOT_CONNECTED|CONFLICT|FORBIDDEN|UNAVAILABLE)/.test(stdout + stderr)
        // What the line prints: a field of its answer (of the first item of a list).
        const printed = code === 0 && line.prints !== undefined ? field(stdout, line.prints) : undefined
        const done =
          code === 0 &&
          (until === undefined || stdout.includes(until)) &&
          (line.prints === undefined || printed !== undefined)
        if (done) {
          if (line.prints !== undefined) values.set(line.prints, printed as string)
          break
        }
        const waiting = until !== undefined || (code === 0 && line.prints !== undefined)
        if ((!waiting && !busy) || Date.now() > deadline)
          assert.fail(`the README line failed: ${line.command}\n${last}`)
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
    }
  })
})
