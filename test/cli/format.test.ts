import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { EXIT_CODE, Output } from '../../src/cli/format.ts'
import { MeshError, UnavailableError } from '../../src/errors.ts'

/** An Output writing into strings, with `--json` on or off. */
function output(json: boolean) {
  const written = { stdout: '', stderr: '' }
  const out = new Output({
    json: () => json,
    stdout: { write: (text: string) => (written.stdout += text) },
    stderr: { write: (text: string) => (written.stderr += text) },
  })
  return { out, written }
}

describe('the CLI formatter', () => {
  it('prints the human text without --json and one JSON line with it', () => {
    const value = { id: 'c1', status: 'pending' }
    const human = output(false)
    human.out.print(value, 'connection c1 pending')
    assert.equal(human.written.stdout, 'connection c1 pending\n')
    assert.equal(human.written.stderr, '')
    assert.equal(human.out.exitCode, EXIT_CODE.ok)

    const json = output(true)
    json.out.print(value, 'connection c1 pending')
    assert.equal(json.written.stdout, '{"id":"c1","status":"pending"}\n')
    assert.deepEqual(JSON.parse(json.written.stdout), value)
    assert.equal(json.written.stderr, '')
  })

  it('reads --json when it prints, not when it is built', () => {
    let json = false
    let stdout = ''
    const out = new Output({
      json: () => json,
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: () => {} },
    })
    json = true
    out.print({ a: 1 }, 'a is 1')
    assert.equal(stdout, '{"a":1}\n')
  })

  it('prints JSON meant to be saved whatever --json says', () => {
    const { out, written } = output(false)
    out.printJson({ size: 3, root: 'abc' })
    assert.equal(written.stdout, '{"size":3,"root":"abc"}\n')
  })

  it('a failed check is printed like an answer and ends with exit status 1', () => {
    const { out, written } = output(false)
    out.printFailed({ ok: false }, 'audit log NOT ok (2 rows):')
    assert.equal(written.stdout, 'audit log NOT ok (2 rows):\n')
    assert.equal(out.exitCode, EXIT_CODE.failure)
    assert.equal(EXIT_CODE.failure, 1)
  })

  it('an error is `error MESH_…: message` on stderr with exit status 1', () => {
    const { out, written } = output(false)
    const code = out.error(new MeshError('MESH_BAD_REQUEST', 'a tier is 2, 3 or 4'))
    assert.equal(code, 1)
    assert.equal(written.stderr, 'error MESH_BAD_REQUEST: a tier is 2, 3 or 4\n')
    assert.equal(written.stdout, '')
  })

  it('under --json an error is also the SPEC error shape on stdout, details included', () => {
    const { out, written } = output(true)
    const code = out.error(new UnavailableError('cannot reach http://127.0.0.1:1'))
    assert.equal(code, EXIT_CODE.failure)
    assert.deepEqual(JSON.parse(written.stdout), {
      error: { code: 'MESH_UNAVAILABLE', message: 'cannot reach http://127.0.0.1:1', details: {} },
    })
    assert.equal(written.stderr, 'error MESH_UNAVAILABLE: cannot reach http://127.0.0.1:1\n')

    const detailed = output(true)
    detailed.out.error(new MeshError('MESH_BAD_REQUEST', 'not the architect', { architect: 'did:key:zA' }))
    assert.deepEqual(JSON.parse(detailed.written.stdout).error.details, { architect: 'did:key:zA' })
  })

  it('an error that is not a MeshError is MESH_INTERNAL, with its stack on stderr', () => {
    const { out, written } = output(false)
    const err = new TypeError('boom')
    assert.equal(out.error(err), EXIT_CODE.failure)
    const [first, ...rest] = written.stderr.split('\n')
    assert.equal(first, 'error MESH_INTERNAL: boom')
    assert.match(rest.join('\n'), /TypeError: boom\n\s+at /)

    const thrown = output(true)
    thrown.out.error('a string')
    assert.deepEqual(JSON.parse(thrown.written.stdout), {
      error: { code: 'MESH_INTERNAL', message: 'a string', details: {} },
    })
    assert.equal(thrown.written.stderr, 'error MESH_INTERNAL: a string\n')
  })

  it('a failed shutdown is reported on stderr with exit status 1', () => {
    const { out, written } = output(true)
    assert.equal(out.shutdownError(new Error('store busy')), EXIT_CODE.failure)
    assert.equal(written.stderr, 'error MESH_INTERNAL: the server did not stop cleanly: store busy\n')
    assert.equal(written.stdout, '')
  })
})
