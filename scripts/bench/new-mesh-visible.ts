/**
 * Time for a new public mesh to be listed by every other mesh. N in-process meshes run
 * discovery every `intervalMs` (records re-signed every 10 intervals), joined through bootstrap addresses; once each lists all
 * the others, a new mesh bootstrapped from one of them starts, and the clock runs from
 * its start until all N list it (`discovery.list()`, polled). Repeated `trials` times
 * (each newcomer stays); the median is reported.
 *
 * The bound, intervalMs + 2 × round: the newcomer publishes and provides the directory
 * in its first round, one round after start. Each other mesh runs its next round at
 * most one interval after its previous round ended; a round already under way when the
 * provide landed may miss it, so the round that sees it ends within one interval and
 * one more round of the newcomer's first one. `round` is measured: the median time of a
 * whole discovery round (`refresh()`) on a few of the settled meshes. While a round
 * takes under half an interval this is under the 2 × interval.
 */
import { type BenchNode, connect, type NodePool } from './nodes.ts'
import { emit, fmt, median, note, type ResultName, sleep } from './report.ts'

export interface NewMeshVisibleInit {
  n: number
  pool: NodePool
  /**
   * Discovery interval of every mesh; default 5 000. All N meshes share one event loop
   * here: at 500 ms or 2 000 ms their rounds (each a few kad-dht queries fanned out to
   * every peer) need more CPU than one core has, rounds hit their 15 s timeout and the
   * network never settles.
   */
  intervalMs?: number
  /** Newcomers, one after the other; default 3. */
  trials?: number
  /** Per trial (the settling gets four times as long); default 30 000. */
  timeoutMs?: number
}

export function newMeshVisibleNames(n: number): ResultName[] {
  return [{ name: `discovery.new_mesh_visible_ms.n${n}`, unit: 'ms', better: 'lower' }]
}

export async function benchNewMeshVisible(init: NewMeshVisibleInit): Promise<void> {
  const { n, pool } = init
  const intervalMs = init.intervalMs ?? 5_000
  const refreshMs = 10 * intervalMs
  const trials = init.trials ?? 3
  const timeoutMs = init.timeoutMs ?? 30_000
  const root = await pool.dir('mesh-bench-visible-')
  const meshes: BenchNode[] = []
  for (let i = 0; i < n; i++) meshes.push(await pool.mesh(root, { intervalMs, refreshMs }))
  await connect(meshes)
  const started = performance.now()
  await Promise.all(meshes.map((m) => m.discovery?.start()))
  const settled = await until(
    meshes,
    (m) => meshes.filter((o) => o !== m).map((o) => o.key.did),
    4 * timeoutMs,
  )
  if (!settled) note(`n${n}: not every mesh listed every other after ${4 * timeoutMs} ms; measuring anyway`)
  else note(`n${n}: every mesh lists the ${n - 1} others after ${Math.round(performance.now() - started)} ms`)

  // A refresh() right after another is exactly one whole round.
  const rounds: number[] = []
  for (const mesh of meshes.slice(0, 3)) {
    await mesh.discovery?.refresh()
    const t0 = performance.now()
    await mesh.discovery?.refresh()
    rounds.push(performance.now() - t0)
  }
  const roundMs = median(rounds)
  note(`n${n}: a discovery round takes ${fmt(rounds)} ms`)

  const times: number[] = []
  for (let trial = 0; trial < trials; trial++) {
    const via = meshes[trial % n] as BenchNode
    const t0 = performance.now()
    const newcomer = await pool.mesh(root, { intervalMs, refreshMs, bootstrap: [via.addr()], start: true })
    const seen = await until(meshes, () => [newcomer.key.did], timeoutMs)
    const ms = performance.now() - t0
    if (seen) times.push(ms)
    else note(`n${n}: newcomer ${trial + 1} not listed by every mesh within ${timeoutMs} ms`)
  }
  note(`n${n}: new mesh listed by all ${n} in ${fmt(times)} ms (interval ${intervalMs} ms)`)
  // A newcomer some mesh never listed makes the figure unmeasured, not fast.
  const value = times.length === trials ? median(times) : null
  emit(`discovery.new_mesh_visible_ms.n${n}`, value, 'ms', intervalMs + 2 * roundMs, 1, 'lower')
}

/** Polls every mesh's list until each holds all the dids `want(mesh)` names; false at the deadline. */
async function until(
  meshes: BenchNode[],
  want: (m: BenchNode) => string[],
  timeoutMs: number,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  const pending = new Set(meshes)
  while (pending.size > 0) {
    for (const mesh of [...pending]) {
      const listed = new Set((await mesh.discovery?.list())?.map((m) => m.did))
      if (want(mesh).every((did) => listed.has(did))) pending.delete(mesh)
    }
    if (pending.size === 0) return true
    if (performance.now() > deadline) return false
    await sleep(20)
  }
  return true
}
