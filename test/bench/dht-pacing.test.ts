// The pacing of the DHT lookup benchmark at 256 meshes (scripts/bench/dht-pacing.ts): who dials
// whom at bootstrap, how nodes are spread over processes, and the deadline and progress lines.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  bootstrapTargets,
  Deadline,
  DeadlineError,
  defaultConnectionMonitor,
  defaultWorkers,
  Progress,
  withTimeout,
} from '../../scripts/bench/dht-pacing.ts'
import { seededRandom } from '../../scripts/bench/dht-sim.ts'

test('node g dials g - 1 and up to fanout - 1 other distinct earlier nodes; node 0 none', () => {
  const plan = bootstrapTargets(256, 4, seededRandom(7))
  assert.equal(plan.length, 256)
  assert.deepEqual(plan[0], [])
  assert.deepEqual(plan[1], [0])
  assert.deepEqual([...(plan[2] ?? [])].sort(), [0, 1])
  for (let g = 1; g < 256; g++) {
    const targets = plan[g] as number[]
    assert.equal(targets[0], g - 1)
    assert.equal(targets.length, Math.min(4, g))
    assert.equal(new Set(targets).size, targets.length)
    for (const j of targets) assert.ok(j >= 0 && j < g)
  }
})

test('the random picks spread over all earlier nodes, not only the newest', () => {
  const plan = bootstrapTargets(256, 4, seededRandom(11))
  // every node is dialled by its successor; the random picks land on the first half too
  const picked = plan.slice(128).flatMap((targets) => targets.slice(1))
  assert.ok(picked.filter((j) => j < 64).length > picked.length / 8)
})

test('up to 64 nodes the layout and limits are as before; from 128, 16 nodes a process and no liveness pings', () => {
  assert.equal(defaultWorkers(16), 4)
  assert.equal(defaultWorkers(64), 8)
  assert.equal(defaultWorkers(2), 1)
  assert.equal(defaultWorkers(128), 8)
  assert.equal(defaultWorkers(256), 16)
  assert.equal(defaultConnectionMonitor(16), undefined)
  assert.equal(defaultConnectionMonitor(64), undefined)
  assert.deepEqual(defaultConnectionMonitor(256), { enabled: false })
})

test('a deadline passes while time is left and then throws a DeadlineError naming the phase', async () => {
  assert.doesNotThrow(() => new Deadline('n256 mesh', 60_000).check('bootstrap'))
  const deadline = new Deadline('n256 mesh', 0)
  assert.throws(
    () => deadline.check('publishing'),
    (err: unknown) =>
      err instanceof DeadlineError && /n256 mesh: not done after 0 s \(in publishing\)/.test(err.message),
  )
})

test('progress writes at most once per interval while running, and once at the end', () => {
  const lines: string[] = []
  const progress = new Progress('n256 mesh: publishing', 5, 60_000, (line) => lines.push(line))
  for (let i = 0; i < 5; i++) progress.tick(`${i} reached no peer`)
  assert.equal(lines.length, 0)
  progress.finish()
  assert.equal(lines.length, 1)
  assert.match(lines[0] as string, /^n256 mesh: publishing: 5\/5 in \d+ s, 4 reached no peer$/)
  const every = new Progress('lookups', 3, 0, (line) => lines.push(line))
  every.tick()
  every.tick()
  assert.equal(lines.length, 3)
  assert.equal(every.done, 2)
})

test('withTimeout gives the value in time and the message when late', async () => {
  assert.equal(await withTimeout(Promise.resolve(3), 1_000, 'late'), 3)
  let release = (): void => {}
  const never = new Promise<void>((resolve) => {
    release = resolve
  })
  await assert.rejects(withTimeout(never, 1, 'the round took too long'), /the round took too long/)
  release()
})
