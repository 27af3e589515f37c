/**
 * Issue 15 (cold start): `mesh <command>` loads only the command group that has the
 * command (src/cli/groups.ts); help, no command and an unknown one load them all.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { Command } from 'commander'
import { COMMAND_GROUPS, groupsFor } from '../../src/cli/groups.ts'

const run = promisify(execFile)
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname

/** Runs `mesh <args>` and says which command group modules it loaded. */
async function groupsLoaded(args: string[]): Promise<{ groups: string[]; stdout: string }> {
  const hook = `
    import { registerHooks } from 'node:module'
    const seen = new Set()
    registerHooks({ resolve(spec, ctx, next) {
      const r = next(spec, ctx)
      const m = r.url.match(/src\\/cli\\/commands\\/([a-z-]+)\\.ts$/)
      if (m) seen.add(m[1])
      return r
    } })
    process.on('exit', () => process.stderr.write('GROUPS ' + JSON.stringify([...seen].sort()) + '\\n'))
  `
  const hookUrl = `data:text/javascript,${encodeURIComponent(hook)}`
  const result = await run(process.execPath, ['--import', hookUrl, MAIN, ...args]).catch(
    (err: { stdout: string; stderr: string }) => err,
  )
  const line = result.stderr.split('\n').find((l) => l.startsWith('GROUPS '))
  assert.ok(line, result.stderr)
  return { groups: JSON.parse(line.slice('GROUPS '.length)) as string[], stdout: result.stdout }
}

describe('command groups (issue 15)', () => {
  it('each group registers exactly the commands the table lists, and no two share one', async () => {
    const all: string[] = []
    for (const group of COMMAND_GROUPS) {
      const cli = new Command('mesh')
      const register = await group.load()
      register(cli, { out: {} as never, env: {}, keystore: () => ({}) as never })
      const names = cli.commands.flatMap((c) => [c.name(), ...c.aliases()])
      assert.deepEqual([...names].sort(), [...group.commands].sort())
      all.push(...names)
    }
    assert.equal(new Set(all).size, all.length)
  })

  it('picks the group the first word names, all of them otherwise', () => {
    const node = COMMAND_GROUPS.find((g) => g.commands.includes('start'))
    const session = COMMAND_GROUPS.find((g) => g.commands.includes('status'))
    assert.deepEqual(groupsFor(['node', 'mesh', 'start', '--data', 'x']), [node])
    assert.deepEqual(groupsFor(['node', 'mesh', '--json', 'status']), [session])
    assert.deepEqual(groupsFor(['node', 'mesh', 'init', '--name', 'status']), [node])
    for (const argv of [[], ['--help'], ['--version'], ['help', 'start'], ['frobnicate'], ['--json']]) {
      assert.equal(groupsFor(['node', 'mesh', ...argv]), COMMAND_GROUPS, argv.join(' '))
    }
  })

  it('`mesh init --help` loads only its group; `mesh --help` loads and lists every group', async () => {
    const one = await groupsLoaded(['init', '--help'])
    assert.deepEqual(one.groups, ['node'])
    assert.match(one.stdout, /Usage: mesh init/)
    const all = await groupsLoaded(['--help'])
    assert.ok(all.groups.length >= COMMAND_GROUPS.length, all.groups.join(' '))
    for (const group of COMMAND_GROUPS) {
      for (const name of group.commands) assert.match(all.stdout, new RegExp(`\\n  ${name}\\b`), name)
    }
  })
})
