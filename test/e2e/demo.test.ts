/**
 * `npm run demo -- --once` tells the whole mission (SPEC §2) and exits by itself: a
 * registry and three meshes that find each other, a connection both architects take
 * part in, a shared room with messages crossing, and a member's agent of beta answering
 * a mention made at alpha; then every process stops and its temp dir is gone.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { access } from 'node:fs/promises'
import { describe, it } from 'node:test'

const DEMO = new URL('../../scripts/demo.ts', import.meta.url).pathname

describe('npm run demo -- --once', () => {
  it('tells the whole mission, exits 0 by itself and leaves nothing behind', async () => {
    const proc = spawn(process.execPath, [DEMO, '--once'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const [code] = (await once(proc, 'exit')) as [number | null]
    assert.equal(code, 0, `demo failed:\n${stdout}\n${stderr}`)
    for (const line of [
      /every mesh discovered the other two through the DHT/,
      /registry lists: .*alpha.*beta.*gamma|registry lists: (?=.*alpha)(?=.*beta)(?=.*gamma)/,
      /the connection is accepted on both sides/,
      /at beta {3}@alpha-architect:alpha: hello beta, from alpha/,
      /at beta {3}@beta-architect: hello alpha, from beta/,
      /at alpha {2}@helper:beta: @alpha-architect:alpha /,
      /the demo is done/,
    ])
      assert.match(stdout, line)
    const root = /^demo data in (.+)$/m.exec(stdout)?.[1]
    assert.ok(root, 'the demo names its data dir')
    await assert.rejects(access(root), { code: 'ENOENT' }, 'its data dir is removed')
  })
})
