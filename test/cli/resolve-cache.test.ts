/**
 * Issue 15 (cold start): `mesh` answers module resolutions from the last run's file
 * (src/cli/resolve-cache.ts) while its stamp holds, and resolves afresh otherwise.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const CACHE = new URL('../../src/cli/resolve-cache.ts', import.meta.url).href
const MESH = new URL('../../bin/mesh.js', import.meta.url).pathname

const dirs: string[] = []
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** A project of three modules: a.mjs imports ./b.mjs; c.mjs is there but unused. */
function project(): { root: string; cc: string } {
  const root = mkdtempSync(join(tmpdir(), 'mesh-resolve-'))
  dirs.push(root)
  writeFileSync(join(root, 'package.json'), '{"type":"module"}')
  writeFileSync(join(root, 'a.mjs'), "export { value } from './b.mjs'\n")
  writeFileSync(join(root, 'b.mjs'), "export const value = 'b'\n")
  writeFileSync(join(root, 'c.mjs'), "export const value = 'c'\n")
  return { root, cc: join(root, 'cc') }
}

/** Runs a process that turns the cache on for `root`, imports a.mjs and prints its value. */
async function runIn(root: string, cc: string, env: Record<string, string> = {}) {
  const script = `
    import { cacheResolutions } from ${JSON.stringify(CACHE)}
    const file = cacheResolutions(new URL(${JSON.stringify(`${pathToFileURL(root).href}/`)}))
    const { value } = await import(${JSON.stringify(pathToFileURL(join(root, 'a.mjs')).href)})
    console.log(JSON.stringify({ file: file ?? null, value }))
  `
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, NODE_COMPILE_CACHE: cc, ...env },
  })
  return JSON.parse(stdout) as { file: string | null; value: string }
}

type Entries = Record<string, [string, string | null]>
const entriesOf = (file: string) => (JSON.parse(readFileSync(file, 'utf8')) as { entries: Entries }).entries

/** Points the cached resolution of ./b.mjs at ./c.mjs. */
function redirect(file: string, root: string) {
  const cached = JSON.parse(readFileSync(file, 'utf8')) as { stamp: string; entries: Entries }
  const key = Object.keys(cached.entries).find((k) => k.split('\n')[1] === './b.mjs')
  assert.ok(key, 'the resolution of ./b.mjs is in the file')
  cached.entries[key] = [pathToFileURL(join(root, 'c.mjs')).href, 'module']
  writeFileSync(file, JSON.stringify(cached))
}

describe('resolve cache (issue 15)', () => {
  it('records resolutions, answers from them, and resolves afresh when the stamp changes', async () => {
    const { root, cc } = project()
    const first = await runIn(root, cc)
    assert.equal(first.value, 'b')
    assert.ok(first.file !== null && existsSync(first.file))
    const entries = entriesOf(first.file)
    assert.ok(
      Object.values(entries).some(([url]) => url === pathToFileURL(join(root, 'b.mjs')).href),
      'the resolution Node made is recorded',
    )
    // A run that resolves nothing new leaves the file as it is.
    const mtime = statSync(first.file).mtimeMs
    assert.equal((await runIn(root, cc)).value, 'b')
    assert.equal(statSync(first.file).mtimeMs, mtime)

    // The answer comes from the file: pointed elsewhere, the import follows it.
    redirect(first.file, root)
    assert.equal((await runIn(root, cc)).value, 'c')
    // The project's package.json changed: the file is stale, Node resolves again.
    const later = new Date(Date.now() + 5000)
    utimesSync(join(root, 'package.json'), later, later)
    assert.equal((await runIn(root, cc)).value, 'b')
  })

  it('drops the file when a module it names is gone, and the next run resolves afresh', async () => {
    const { root, cc } = project()
    const { file } = await runIn(root, cc)
    assert.ok(file !== null)
    redirect(file, root)
    rmSync(join(root, 'c.mjs'))
    await assert.rejects(runIn(root, cc))
    assert.equal(existsSync(file), false)
    assert.equal((await runIn(root, cc)).value, 'b')
  })

  it('resolves afresh from a file that is not one it wrote', async () => {
    const { root, cc } = project()
    const { file } = await runIn(root, cc)
    assert.ok(file !== null)
    const { stamp } = JSON.parse(readFileSync(file, 'utf8')) as { stamp: string }
    for (const text of [
      '{',
      'null',
      JSON.stringify({ stamp, entries: null }),
      JSON.stringify({ stamp, entries: { x: 1 } }),
    ]) {
      writeFileSync(file, text)
      assert.equal((await runIn(root, cc)).value, 'b')
    }
    // A key of the right shape with a wrong value is not taken either.
    const cached = JSON.parse(readFileSync(file, 'utf8')) as {
      stamp: string
      entries: Record<string, unknown>
    }
    for (const key of Object.keys(cached.entries)) cached.entries[key] = 42
    writeFileSync(file, JSON.stringify(cached))
    assert.equal((await runIn(root, cc)).value, 'b')
  })

  it('is off with MESH_RESOLVE_CACHE=0', async () => {
    const { root, cc } = project()
    const { file, value } = await runIn(root, cc, { MESH_RESOLVE_CACHE: '0' })
    assert.equal(file, null)
    assert.equal(value, 'b')
    assert.equal(
      existsSync(cc) && readdirSync(cc, { recursive: true }).some((f) => String(f).includes('mesh-resolve')),
      false,
    )
  })

  it('mesh prints the same with the file as without it', async () => {
    const cc = mkdtempSync(join(tmpdir(), 'mesh-resolve-cc-'))
    dirs.push(cc)
    const mesh = () =>
      run(process.execPath, [MESH, '--help'], { env: { ...process.env, NODE_COMPILE_CACHE: cc } })
    const cold = await mesh()
    const files = readdirSync(cc, { recursive: true })
      .map(String)
      .filter((f) => f.includes('mesh-resolve-'))
    assert.equal(files.length, 1, 'the first run wrote the file')
    const warm = await mesh()
    assert.equal(warm.stdout, cold.stdout)
    assert.equal(warm.stderr, cold.stderr)
  })
})
