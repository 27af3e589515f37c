/**
 * `npm run demo`: a registry and three meshes on loopback, as separate processes,
 * finding each other through the registry and then the DHT. Ctrl+C stops them all.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getJson, type MeshProcess, runMesh, startMesh, waitFor } from './lib/processes.ts'

const root = await mkdtemp(join(tmpdir(), 'mesh-demo-'))
const env = { MESH_KEYSTORE: join(root, 'keys'), MESH_LOG_LEVEL: 'warn' }
const running: MeshProcess[] = []
const say = (line: string) => process.stdout.write(`${line}\n`)

async function shutdown(code: number): Promise<never> {
  await Promise.all(running.map((p) => p.stop('SIGTERM')))
  process.exit(code)
}
process.on('SIGINT', () => void shutdown(0))
process.on('SIGTERM', () => void shutdown(0))

try {
  say(`demo data in ${root}`)
  const registry = await startMesh(
    ['registry', '--data', join(root, 'registry'), '--http', '127.0.0.1:0', '--heartbeat-interval', '2000'],
    env,
  )
  running.push(registry)
  say(`registry   ${registry.http}`)

  const meshes: Array<MeshProcess & { name: string }> = []
  for (const name of ['alpha', 'beta', 'gamma']) {
    const init = await runMesh(['init', '--data', join(root, name), '--name', name], env)
    if (init.code !== 0) throw new Error(init.stderr)
    const mesh = await startMesh(
      [
        'start',
        ...['--data', join(root, name), '--http', '127.0.0.1:0', '--registry', registry.http, '--public'],
        ...['--discovery-interval', '1000', '--heartbeat-interval', '2000'],
      ],
      env,
    )
    running.push(mesh)
    meshes.push({ ...mesh, name })
    say(`${name.padEnd(10)} ${mesh.http}  ${mesh.did}`)
  }

  const started = Date.now()
  for (const mesh of meshes) {
    await waitFor(async () => {
      const { meshes: known } = await getJson<{ meshes: unknown[] }>(`${mesh.http}/api/meshes/public`)
      return known.length >= meshes.length - 1
    }, `${mesh.name} to discover the others`)
  }
  say(`\nevery mesh discovered the other two through the DHT in ${Date.now() - started} ms:`)
  for (const mesh of meshes) {
    const { meshes: known } = await getJson<{ meshes: Array<{ name: string; status: string }> }>(
      `${mesh.http}/api/meshes/public`,
    )
    say(`  ${mesh.name} knows ${known.map((m) => `${m.name} (${m.status})`).join(', ')}`)
  }
  const { meshes: listed } = await getJson<{
    meshes: Array<{ name: string; status: string; members: number }>
  }>(`${registry.http}/api/meshes/public`)
  say(`\nregistry lists: ${listed.map((m) => `${m.name} ${m.status} members=${m.members}`).join(', ')}`)
  say(`\ntry: curl ${meshes[0]?.http}/.well-known/mesh-manifest.json`)
  say(`     MESH_KEYSTORE=${env.MESH_KEYSTORE} npx mesh status --data ${join(root, 'alpha')}`)
  say('Ctrl+C stops the demo.')
  if (process.env.MESH_DEMO_EXIT === '1') await shutdown(0)
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`)
  await shutdown(1)
}
