import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it, type TestContext } from 'node:test'
import { type MeshProcess, runMesh, startMesh } from '../../scripts/lib/processes.ts'
import { tempDir } from '../fixtures/principals.ts'

// Issue 14: every CLI error, commander's own included, is `error MESH_…: message` on stderr and
// the error shape on stdout under --json; a person's mistake is never MESH_INTERNAL.

const VALID_DID = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'

interface ErrorShape {
  error: { code: string; message: string; details: Record<string, unknown> }
}

/** Runs `mesh args` twice, as text and under --json, and checks both say the same one error. */
async function refused(env: NodeJS.ProcessEnv, args: string[], code: string, message: RegExp) {
  const text = await runMesh(args, env)
  assert.equal(text.code, 1, text.stderr)
  assert.equal(text.stdout, '')
  const lines = text.stderr.split('\n').filter(Boolean)
  assert.equal(lines.length, 1, `one line, no stack or help: ${text.stderr}`)
  assert.match(lines[0] as string, new RegExp(`^error ${code}: `))
  assert.match(lines[0] as string, message)
  const json = await runMesh(['--json', ...args], env)
  assert.equal(json.code, 1)
  const shape = JSON.parse(json.stdout) as ErrorShape
  assert.equal(shape.error.code, code)
  assert.match(shape.error.message, message)
  assert.equal(json.stderr, text.stderr)
}

describe('CLI errors a person makes', () => {
  let env: NodeJS.ProcessEnv
  let dir: string
  let node: MeshProcess
  before(async () => {
    const root = await tempDir(undefined as unknown as TestContext, 'mesh-cli-errors-')
    env = { MESH_KEYSTORE: join(root, 'keys'), MESH_LOG_LEVEL: 'warn' }
    dir = join(root, 'alpha')
    node = await startMesh(['start', '--data', dir, '--http', '127.0.0.1:0'], env)
  })
  // The describe's after: the node stops before the temp dir goes (at the end of the file).
  after(() => node?.stop())

  it('commander’s own: unknown option, unknown command, missing argument, a value not among the choices', async () => {
    await refused(
      env,
      ['start', '--bogus'],
      'MESH_BAD_REQUEST',
      /unknown option '--bogus' \(see mesh start --help\)/,
    )
    await refused(env, ['nosuch'], 'MESH_BAD_REQUEST', /unknown command 'nosuch'/)
    await refused(
      env,
      ['member', 'add', 'carol'],
      'MESH_BAD_REQUEST',
      /'--kind <kind>' not specified \(see mesh member add --help\)$/,
    )
    await refused(env, ['delegate'], 'MESH_BAD_REQUEST', /missing required argument 'audience'/)
    await refused(
      env,
      ['policy', '--mode', 'bogus'],
      'MESH_BAD_REQUEST',
      /Allowed choices are open, allowlist, closed/,
    )
    // --json after the unknown option still asks for JSON.
    const late = await runMesh(['start', '--bogus', '--json'], env)
    assert.equal((JSON.parse(late.stdout) as ErrorShape).error.code, 'MESH_BAD_REQUEST')
  })

  it('--help and --version still exit 0', async () => {
    const help = await runMesh(['start', '--help'], env)
    assert.equal(help.code, 0)
    assert.match(help.stdout, /^Usage: mesh start/)
    const version = await runMesh(['--version'], env)
    assert.deepEqual([version.code, version.stdout], [0, '0.1.0\n'])
  })

  it('mesh delegate notadid …, a malformed ability or resource', async () => {
    const data = ['--data', dir]
    await refused(
      env,
      ['delegate', 'notadid', 'room/post', ...data],
      'MESH_BAD_REQUEST',
      /the audience must be a did:key or did:web, got notadid/,
    )
    await refused(
      env,
      ['delegate', 'did:key:xyz', 'room/post', ...data],
      'MESH_BAD_REQUEST',
      /not a valid did:key/,
    )
    await refused(
      env,
      ['delegate', VALID_DID, 'notanability', ...data],
      'MESH_BAD_REQUEST',
      /invalid capability: 'can: "notanability"'/,
    )
    await refused(
      env,
      ['delegate', VALID_DID, 'room/post', '--with', 'notaresource', ...data],
      'MESH_BAD_REQUEST',
      /invalid capability: 'with: "notaresource"'/,
    )
    const ok = await runMesh(['--json', 'delegate', VALID_DID, 'room/post', ...data], env)
    assert.equal(ok.code, 0, ok.stderr)
  })

  it('mesh trust did:key:xyz --tier 2 stores nothing', async () => {
    await refused(
      env,
      ['trust', 'did:key:xyz', '--tier', '2', '--reason', 'typo', '--data', dir],
      'MESH_BAD_REQUEST',
      /not a valid did:key/,
    )
    const list = await runMesh(['--json', 'trust', '--data', dir], env)
    assert.equal(list.code, 0, list.stderr)
    assert.ok(!list.stdout.includes('did:key:xyz'))
  })
})
