import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Command } from 'commander'
import { runMesh } from '../../scripts/lib/processes.ts'
import { idsAsOperands } from '../../src/cli/dash-operands.ts'

/** A command shaped like `mesh task assign` and `mesh file post` (which has `-m <text>`). */
function program(seen: Array<{ args: string[]; opts: Record<string, unknown> }>): Command {
  const root = new Command('mesh').exitOverride()
  root
    .command('assign <room> <task> <who>')
    .option('--as <name>')
    .option('-m, --message <text>')
    .option('--quiet')
    .action((room: string, task: string, who: string, opts: Record<string, unknown>) => {
      seen.push({ args: [room, task, who], opts })
    })
  idsAsOperands(root)
  return root
}

describe('entry ids that start with a dash (one in 64 do)', () => {
  it('are operands wherever they stand, prefixes too; options around them still parse', async () => {
    const seen: Array<{ args: string[]; opts: Record<string, unknown> }> = []
    const root = program(seen)
    await root.parseAsync(['assign', 'room1', '-l7L_LpL29', '@carol:beta', '--as', 'carol'], { from: 'user' })
    const id = '-l7L_LpL29q-dxUx3zCS4Tn0q5oYvK0w4lG8t3lR9Qz0'
    await root.parseAsync(['assign', '--quiet', 'room1', id, '-_who_1'], { from: 'user' })
    assert.deepEqual(seen[0], { args: ['room1', '-l7L_LpL29', '@carol:beta'], opts: { as: 'carol' } })
    assert.deepEqual(seen[1], { args: ['room1', id, '-_who_1'], opts: { quiet: true } })
  })

  it('a short option with its value attached is still that option; an unknown option, or a dash and two characters, is still refused', async () => {
    const seen: Array<{ args: string[]; opts: Record<string, unknown> }> = []
    const root = program(seen)
    await root.parseAsync(['assign', 'room1', 'task1', 'who', '-mHello'], { from: 'user' })
    assert.deepEqual(seen[0], { args: ['room1', 'task1', 'who'], opts: { message: 'Hello' } })
    // An option's value that looks like an id is that option's, as before.
    await root.parseAsync(['assign', 'room1', '--as', '-l7L_LpL29', 'task1', '-m', '-urgent', 'who'], {
      from: 'user',
    })
    assert.deepEqual(seen[1], {
      args: ['room1', 'task1', 'who'],
      opts: { as: '-l7L_LpL29', message: '-urgent' },
    })
    await assert.rejects(
      root.parseAsync(['assign', 'room1', 'task1', 'who', '--bogus'], { from: 'user' }),
      /unknown option '--bogus'/,
    )
    await assert.rejects(
      root.parseAsync(['assign', 'room1', 'task1', 'who', '-x_'], { from: 'user' }),
      /unknown option '-x_'/,
    )
  })

  it('the mesh command takes one: `mesh task done ROOM -l7L…` reaches the node, not "unknown option"', async () => {
    const res = await runMesh([
      'task',
      'done',
      '0123456789abcdef',
      '-l7L_LpL29',
      '--data',
      '/nonexistent-mesh-dir',
    ])
    assert.equal(res.code, 1)
    assert.doesNotMatch(res.stderr, /unknown option/)
    // Past the parser: the command itself asks for a key to sign with.
    assert.match(res.stderr, /^error MESH_BAD_REQUEST: no default signing key for this data dir/)
  })
})
