import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { waitFor } from '../../scripts/lib/processes.ts'
import { brokenLink, isNpmCommand, npmChain, type ProcessTable } from '../../src/cli/parent-watch.ts'
import { tempDir } from '../fixtures/principals.ts'

// Issue 14: a node started through a wrapper (npm start, npx mesh, bin/mesh.js's re-spawn on an
// older Node) ends when the outermost wrapper is killed, by SIGTERM or SIGKILL: its pid is gone
// and its HTTP port no longer answers.

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const BIN = join(ROOT, 'bin', 'mesh.js')

interface Address {
  http: string
  pid: number
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const answers = async (url: string) => {
  try {
    await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2000) })
    return true
  } catch {
    return false
  }
}

/** A system Node without type stripping (on which bin/mesh.js re-spawns), if there is one. */
const OLD_NODE = ['/usr/bin/node', '/usr/local/bin/node'].find((path) => {
  if (!existsSync(path)) return false
  const res = spawnSync(path, ['-p', 'process.features.typescript ? 1 : 0'], { encoding: 'utf8' })
  return res.status === 0 && res.stdout.trim() === '0'
})

// Whatever a failed test left running is killed when the file ends.
const nodePids: number[] = []
after(() => {
  for (const pid of nodePids) if (alive(pid)) process.kill(pid, 'SIGKILL')
})

/** Starts `command args… start --data <dir> --http 127.0.0.1:0` and waits for the node's address file. */
async function startThrough(
  t: TestContext,
  command: string,
  args: string[],
): Promise<{ wrapper: ChildProcess; node: Address }> {
  const root = await tempDir(t, 'mesh-signals-')
  const dir = join(root, 'mesh')
  const wrapper = spawn(command, [...args, '--data', dir, '--http', '127.0.0.1:0'], {
    cwd: ROOT,
    env: { ...process.env, MESH_KEYSTORE: join(root, 'keys'), MESH_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  wrapper.stdout?.on('data', (d: Buffer) => (output += d.toString()))
  wrapper.stderr?.on('data', (d: Buffer) => (output += d.toString()))
  t.after(() => {
    if (wrapper.exitCode === null && wrapper.signalCode === null) wrapper.kill('SIGKILL')
  })
  const node = await waitFor(
    async () => {
      if (wrapper.exitCode !== null) throw new Error(`wrapper exited: ${output}`)
      if (!/^ready /m.test(output)) return undefined
      return JSON.parse(await readFile(join(dir, 'node.json'), 'utf8')) as Address
    },
    `the node started through ${command} ${args.join(' ')}`,
    60_000,
    100,
  )
  nodePids.push(node.pid)
  assert.notEqual(node.pid, wrapper.pid, 'the node runs under a wrapper')
  assert.ok(await answers(node.http))
  return { wrapper, node }
}

async function killAndWaitGone(wrapper: ChildProcess, node: Address, signal: NodeJS.Signals) {
  const exited = once(wrapper, 'exit')
  wrapper.kill(signal)
  await exited
  await waitFor(
    async () => !alive(node.pid) && !(await answers(node.http)),
    'the node to be gone',
    30_000,
    100,
  )
}

describe('signals reach the node whatever started it', () => {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`${signal} on \`npm start\` stops the node`, async (t) => {
      const { wrapper, node } = await startThrough(t, 'npm', ['start', '--'])
      await killAndWaitGone(wrapper, node, signal)
    })

    it(`${signal} on \`npx mesh start\` stops the node`, async (t) => {
      const { wrapper, node } = await startThrough(t, 'npx', ['--no', '--', 'mesh', 'start'])
      await killAndWaitGone(wrapper, node, signal)
    })

    // An older Node is played by the pinned one without type stripping: bin/mesh.js then re-spawns.
    it(`${signal} on bin/mesh.js's re-spawn stops the node`, async (t) => {
      const { wrapper, node } = await startThrough(t, process.execPath, [
        '--no-experimental-strip-types',
        BIN,
        'start',
      ])
      await killAndWaitGone(wrapper, node, signal)
    })

    // And by the system's own older Node, where there is one (CI's Node 20).
    it(`${signal} on bin/mesh.js run by the system's older Node stops the node`, {
      skip: OLD_NODE === undefined && 'no older system Node',
    }, async (t) => {
      const { wrapper, node } = await startThrough(t, OLD_NODE as string, [BIN, 'start'])
      await killAndWaitGone(wrapper, node, signal)
    })
  }
})

describe('the wrapper chain', () => {
  // pid → [ppid, argv]
  const tableOf = (procs: Record<number, [number, string[]]>): ProcessTable => ({
    parentOf: async (pid) => procs[pid]?.[0],
    commandOf: async (pid) => procs[pid]?.[1],
  })

  it('recognises npm by its title or its script', () => {
    assert.ok(isNpmCommand(['npm start --data x']))
    assert.ok(isNpmCommand(['npm exec mesh start']))
    assert.ok(isNpmCommand(['/usr/bin/node', '/usr/lib/node_modules/npm/bin/npm-cli.js', 'start']))
    assert.ok(isNpmCommand(['node', '/usr/bin/npx', 'mesh']))
    assert.ok(!isNpmCommand(['sh', '-c', 'node src/cli/main.ts start']))
    assert.ok(!isNpmCommand(['node', 'bin/mesh.js', 'start', '--name', 'npm']))
  })

  it('npm as pid 1 (a container) is found; no npm at all: the direct parent only', async () => {
    const inContainer = tableOf({
      100: [50, ['node', 'main.ts']],
      50: [1, ['sh', '-c', 'node main.ts']],
      1: [0, ['npm start']],
    })
    assert.deepEqual(await npmChain(inContainer, 100), [
      { pid: 100, ppid: 50 },
      { pid: 50, ppid: 1 },
    ])
    const noNpm = tableOf({ 100: [50, ['node', 'main.ts']], 50: [1, ['bash']], 1: [0, ['/sbin/init']] })
    assert.deepEqual(await npmChain(noNpm, 100), [{ pid: 100, ppid: 50 }])
  })

  it('runs up to npm; a link that moves or ends is broken', async () => {
    const procs: Record<number, [number, string[]]> = {
      100: [50, ['node', 'main.ts']],
      50: [40, ['sh', '-c', 'node main.ts']],
      40: [30, ['npm start']],
      30: [1, ['bash']],
    }
    const table = tableOf(procs)
    const links = await npmChain(table, 100)
    assert.deepEqual(links, [
      { pid: 100, ppid: 50 },
      { pid: 50, ppid: 40 },
    ])
    assert.equal(await brokenLink(table, links), undefined)
    procs[50] = [1, ['sh', '-c', 'node main.ts']] // npm SIGKILLed: sh re-parented
    assert.deepEqual(await brokenLink(table, links), { pid: 50, ppid: 40 })
    delete procs[50] // sh gone too
    procs[100] = [1, ['node', 'main.ts']]
    assert.deepEqual(await brokenLink(table, links), { pid: 100, ppid: 50 })
  })
})
