/**
 * A `mesh` process started through a wrapper — `npm start`, `npx mesh`, bin/mesh.js's
 * re-spawn on an older Node — ends when the wrapper does. A wrapper that dies does not
 * always pass its signal on (npm sends SIGTERM to `sh -c`, which dies and leaves its child
 * running; a SIGKILLed parent passes nothing on), so the process watches the chain of
 * wrappers above it and, once a link breaks, sends itself SIGTERM: a running node then
 * stops as on any SIGTERM (its handler in commands/node.ts), a short command just ends.
 *
 * Which ancestors are wrappers: under npm (`npm_lifecycle_event` in the environment, set by
 * `npm run` and `npx`) every ancestor up to and including the npm process; under the
 * re-spawn (an IPC channel from bin/mesh.js) the parent, through the channel's
 * `disconnect`. A process started otherwise (systemd, a shell, `nohup … &`) watches nothing,
 * so it outlives whoever started it as before.
 */
import { readFile } from 'node:fs/promises'

/** One link of the chain: `pid`'s parent was `ppid` when the watch began. */
export interface ParentLink {
  pid: number
  ppid: number
}

/** What the watch reads of a process: its parent and its command line, or undefined once it is gone. */
export interface ProcessTable {
  parentOf(pid: number): Promise<number | undefined>
  commandOf(pid: number): Promise<string[] | undefined>
}

/** Linux's /proc; elsewhere every lookup is undefined, and only the direct parent is watched. */
export const procTable: ProcessTable = {
  async parentOf(pid) {
    if (pid === process.pid) return process.ppid
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const ppid = Number(fields[1])
      return fields[0] === 'Z' || !Number.isInteger(ppid) ? undefined : ppid
    } catch {
      return undefined
    }
  },
  async commandOf(pid) {
    try {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8')
      return cmdline.split('\0').filter((arg) => arg.length > 0)
    } catch {
      return undefined
    }
  },
}

/** npm's own process: its title is `npm start …` / `npm exec …`, or it runs npm-cli.js / npx-cli.js. */
export function isNpmCommand(argv: string[]): boolean {
  const first = argv[0] ?? ''
  if (first === 'npm' || first.startsWith('npm ') || first === 'npx' || first.startsWith('npx ')) return true
  return argv.slice(0, 2).some((arg) => /(^|\/)(npm|npx)(-cli\.js)?$/.test(arg))
}

/** At most this many wrappers are walked through looking for npm. */
const MAX_DEPTH = 8

/**
 * The links to watch under npm: from this process up to the npm process that started the
 * chain. When no npm ancestor is found (no /proc, or a title npm did not set), just the
 * direct parent.
 */
export async function npmChain(table: ProcessTable, self = process.pid): Promise<ParentLink[]> {
  const links: ParentLink[] = []
  let pid = self
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const ppid = await table.parentOf(pid)
    if (ppid === undefined || ppid < 1) break
    links.push({ pid, ppid })
    const command = await table.commandOf(ppid)
    if (command === undefined) break
    if (isNpmCommand(command)) return links
    pid = ppid
  }
  const ppid = await table.parentOf(self)
  return ppid === undefined ? [] : [{ pid: self, ppid }]
}

/** The first link that broke (its process gone, or moved under another parent), if any. */
export async function brokenLink(table: ProcessTable, links: ParentLink[]): Promise<ParentLink | undefined> {
  for (const link of links) {
    if ((await table.parentOf(link.pid)) !== link.ppid) return link
  }
  return undefined
}

export interface ParentWatchInit {
  env: NodeJS.ProcessEnv
  /** Called once, when a wrapper is gone. */
  onLost: () => void
  table?: ProcessTable
  /** How often the chain is read; default 500 ms. */
  intervalMs?: number
}

/** Starts watching the wrappers above this process (see the file comment). Never keeps the process alive. */
export async function watchParents(init: ParentWatchInit): Promise<void> {
  let lost = false
  const lose = () => {
    if (lost) return
    lost = true
    init.onLost()
  }
  // bin/mesh.js's re-spawn: the IPC channel closes when the parent dies, however it died.
  if (process.channel !== undefined && init.env.MESH_RESPAWNED === '1') {
    process.channel.unref()
    process.once('disconnect', lose)
  }
  if (init.env.npm_lifecycle_event === undefined) return
  const table = init.table ?? procTable
  const links = await npmChain(table)
  const timer = setInterval(() => {
    void brokenLink(table, links).then((link) => {
      if (link !== undefined) {
        clearInterval(timer)
        lose()
      }
    })
  }, init.intervalMs ?? 500)
  timer.unref()
}
