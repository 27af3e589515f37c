import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { access, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, it, type TestContext } from 'node:test'
import { type MeshProcess, runMesh, startMesh } from '../../scripts/lib/processes.ts'
import { tempDir } from '../fixtures/principals.ts'

// Issue 14: init all or nothing, a first start that says what it created, and a data dir or a
// port another process holds as one line of MESH_CONFLICT.

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  )

async function setup(t: TestContext) {
  const root = await tempDir(t, 'mesh-init-')
  const env = { MESH_KEYSTORE: join(root, 'keys'), MESH_LOG_LEVEL: 'warn' }
  const running: MeshProcess[] = []
  t.after(() => Promise.all(running.map((p) => p.stop('SIGKILL'))))
  return {
    root,
    env,
    mesh: (...args: string[]) => runMesh(args, env),
    start: async (...args: string[]) => {
      const proc = await startMesh(args, env)
      running.push(proc)
      return proc
    },
  }
}

describe('mesh init is all or nothing', () => {
  it('a bad name leaves nothing behind', async (t) => {
    const { root, mesh } = await setup(t)
    const dir = join(root, 'alpha')
    const res = await mesh('init', '--data', dir, '--name', 'Not A Name')
    assert.equal(res.code, 1)
    assert.match(res.stderr, /^error MESH_BAD_REQUEST: a mesh name is/)
    assert.equal(await exists(dir), false)
    assert.deepEqual(await readdir(root), [])
  })

  it('an architect key that exists leaves nothing behind; the dir can then be initialised', async (t) => {
    const { root, env, mesh } = await setup(t)
    assert.equal((await mesh('init', '--data', join(root, 'one'), '--name', 'alpha')).code, 0)
    const keysBefore = await readdir(env.MESH_KEYSTORE)
    const dir = join(root, 'two')
    const res = await mesh('--json', 'init', '--data', dir, '--name', 'alpha')
    assert.equal(res.code, 1)
    assert.equal(JSON.parse(res.stdout).error.code, 'MESH_CONFLICT')
    assert.equal(res.stderr.split('\n').filter(Boolean).length, 1, res.stderr)
    assert.equal(await exists(dir), false)
    assert.deepEqual((await readdir(root)).sort(), ['keys', 'one'])
    assert.deepEqual(await readdir(env.MESH_KEYSTORE), keysBefore)
    const again = await mesh('--json', 'init', '--data', dir, '--name', 'beta')
    assert.equal(again.code, 0, again.stderr)
    assert.equal(JSON.parse(again.stdout).name, 'beta')
    assert.ok(await exists(join(dir, 'mesh-key.json')))
  })

  it('into an existing dir, keeping what is there; a second init is MESH_CONFLICT', async (t) => {
    const { root, mesh } = await setup(t)
    const dir = join(root, 'gamma')
    await mkdir(dir)
    await writeFile(join(dir, 'notes.txt'), 'mine')
    assert.equal((await mesh('init', '--data', dir)).code, 0)
    assert.deepEqual((await readdir(dir)).sort(), [
      'audit-checkpoint.json',
      'db',
      'mesh-key.json',
      'notes.txt',
    ])
    assert.deepEqual((await readdir(root)).sort(), ['gamma', 'keys'], 'no temp dir left')
    const again = await mesh('init', '--data', dir)
    assert.equal(again.code, 1)
    assert.equal(again.stderr, `error MESH_CONFLICT: ${dir} already holds a mesh\n`)
  })
})

describe('mesh init on what an older, failed init left', () => {
  it('a mesh key without its mesh: MESH_CONFLICT that says so', async (t) => {
    const { root, mesh } = await setup(t)
    const dir = join(root, 'lambda')
    assert.equal((await mesh('init', '--data', dir)).code, 0)
    await rm(join(dir, 'db'), { recursive: true })
    const res = await mesh('init', '--data', dir)
    assert.equal(res.code, 1)
    assert.equal(
      res.stderr,
      `error MESH_CONFLICT: ${dir} holds a mesh key but no mesh (left by a failed init); remove the directory or choose another --data\n`,
    )
  })
})

describe('mesh init where the file system says no', () => {
  it('a data dir under a file, a keystore that is a file: one line of MESH_BAD_REQUEST, nothing left', async (t) => {
    const { root, env } = await setup(t)
    const file = join(root, 'a-file')
    await writeFile(file, '')
    const under = await runMesh(['init', '--data', join(file, 'mesh')], env)
    assert.equal(under.code, 1)
    assert.equal(
      under.stderr,
      `error MESH_BAD_REQUEST: cannot create ${join(file, 'mesh')} (EEXIST: file already exists)\n`,
    )
    const keystore = await runMesh(['init', '--data', join(root, 'kappa')], { ...env, MESH_KEYSTORE: file })
    assert.equal(keystore.code, 1)
    assert.match(
      keystore.stderr,
      /^error MESH_BAD_REQUEST: cannot use .*a-file.*: a part of the path is a file, not a directory\n$/,
    )
    assert.deepEqual((await readdir(root)).sort(), ['a-file'])
  })
})

describe('mesh start', () => {
  it('a first start says what it created and where; the ready line stays first on stdout', async (t) => {
    const { root, env } = await setup(t)
    const dir = join(root, 'delta')
    const proc = spawn(process.execPath, [MAIN, 'start', '--data', dir, '--http', '127.0.0.1:0'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = once(proc, 'exit')
    t.after(async () => {
      if (proc.exitCode === null) proc.kill('SIGKILL')
      await exited
    })
    let stderr = ''
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const [first] = (await once(createInterface({ input: proc.stdout }), 'line')) as [string]
    assert.match(first, /^ready /)
    assert.match(stderr, new RegExp(`^mesh delta created in ${dir}\\n`))
    const keyPath = join(env.MESH_KEYSTORE, 'delta-architect.json')
    assert.ok(stderr.includes(`  architect key: ${keyPath} (keep it safe`), stderr)
    assert.ok(await exists(keyPath))
    proc.kill('SIGTERM')
    assert.deepEqual(await exited, [0, null])
  })

  it('a data dir held by a running node is MESH_CONFLICT naming its pid and URL', async (t) => {
    const { root, mesh, start } = await setup(t)
    const dir = join(root, 'zeta')
    const node = await start('start', '--data', dir, '--http', '127.0.0.1:0')
    const { pid } = JSON.parse(await readFile(join(dir, 'node.json'), 'utf8')) as { pid: number }
    const line = `error MESH_CONFLICT: ${dir} is held by a running node: pid ${pid}, ${node.http}\n`
    const again = await mesh('start', '--data', dir, '--http', '127.0.0.1:0')
    assert.equal(again.code, 1)
    assert.equal(again.stderr, line)
    const json = await mesh('--json', 'start', '--data', dir, '--http', '127.0.0.1:0')
    assert.deepEqual(JSON.parse(json.stdout).error.details, { dataDir: dir, pid, http: node.http })
    const init = await mesh('init', '--data', dir)
    assert.equal(init.stderr, line)
  })

  it('a stale address file (its process gone) does not hold the dir', async (t) => {
    const { root, mesh, start } = await setup(t)
    const dir = join(root, 'eta')
    assert.equal((await mesh('init', '--data', dir)).code, 0)
    await writeFile(join(dir, 'node.json'), JSON.stringify({ pid: 2 ** 22 + 1, http: 'http://127.0.0.1:1' }))
    const node = await start('start', '--data', dir, '--http', '127.0.0.1:0')
    assert.ok(node.http.startsWith('http://127.0.0.1:'))
  })

  it('a busy HTTP port is one line of MESH_CONFLICT', async (t) => {
    const { root, mesh } = await setup(t)
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => server.close())
    const { port } = server.address() as { port: number }
    const res = await mesh('start', '--data', join(root, 'theta'), '--http', `127.0.0.1:${port}`)
    assert.equal(res.code, 1)
    assert.equal(
      res.stderr
        .split('\n')
        .filter((l) => !l.startsWith('mesh theta created') && !l.startsWith('  '))
        .join('\n'),
      `error MESH_CONFLICT: HTTP address 127.0.0.1:${port} is already in use by another process\n`,
    )
  })
})

describe('mesh start on a busy libp2p port', () => {
  it('is one line of MESH_CONFLICT', async (t) => {
    const { root, mesh } = await setup(t)
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => server.close())
    const { port } = server.address() as { port: number }
    const dir = join(root, 'iota')
    assert.equal((await mesh('init', '--data', dir)).code, 0)
    const res = await mesh(
      'start',
      '--data',
      dir,
      '--http',
      '127.0.0.1:0',
      '--listen',
      `/ip4/127.0.0.1/tcp/${port}`,
    )
    assert.equal(res.code, 1)
    assert.match(
      res.stderr,
      /^error MESH_CONFLICT: a libp2p --listen address.* is already in use by another process\n$/,
    )
  })
})

describe('mesh registry', () => {
  it('on a data dir another registry holds: one line of MESH_CONFLICT', async (t) => {
    const { root, mesh, start } = await setup(t)
    const dir = join(root, 'registry')
    await start('registry', '--data', dir, '--http', '127.0.0.1:0')
    const again = await mesh('registry', '--data', dir, '--http', '127.0.0.1:0')
    assert.equal(again.code, 1)
    assert.equal(
      again.stderr,
      `error MESH_CONFLICT: ${dir} is in use by another process (its store is locked)\n`,
    )
  })
})
