import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Test processes run in parallel (`--test-concurrency`); each takes ports for meshes it starts later. */
describe('freePort, shared by parallel test processes', () => {
  it('never hands one port to two processes of a run, and every port it hands out is below the ephemeral range', async () => {
    const script = `import { freePort } from ${JSON.stringify(new URL('./fixtures/ports.ts', import.meta.url).href)}
const ports = []
for (let i = 0; i < 100; i++) ports.push(await freePort())
console.log(JSON.stringify(ports))`
    const outputs = await Promise.all(
      [0, 1, 2].map(() => run(process.execPath, ['--input-type=module', '-e', script])),
    )
    const ports = outputs.flatMap((o) => JSON.parse(o.stdout) as number[])
    assert.equal(ports.length, 300)
    assert.equal(new Set(ports).size, 300, 'a port was handed out twice')
    const ephemeralFrom = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    )
    for (const port of ports) assert.ok(port >= 1_024 && port < ephemeralFrom, `port ${port}`)
  })
})
