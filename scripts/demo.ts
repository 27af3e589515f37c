/**
 * `npm run demo`: a registry and three meshes on loopback, as separate processes,
 * finding each other through the registry and then the DHT; then the example agent
 * (examples/mention-agent) enrolled in alpha, answering mentions in alpha's room.
 * Ctrl+C stops them all.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type AgentProcess, startAgent } from './lib/mention-agent.ts'
import { getJson, type MeshProcess, runMesh, startMesh, waitFor } from './lib/processes.ts'

const root = await mkdtemp(join(tmpdir(), 'mesh-demo-'))
const env = { MESH_KEYSTORE: join(root, 'keys'), MESH_LOG_LEVEL: 'warn' }
const running: Array<MeshProcess | AgentProcess> = []
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

  const alpha = meshes[0]
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
  const room = alpha === undefined ? undefined : await startExampleAgent(alpha)
  say(`\ntry: curl ${meshes[0]?.http}/.well-known/mesh-manifest.json`)
  say(`     MESH_KEYSTORE=${env.MESH_KEYSTORE} npx mesh status --data ${join(root, 'alpha')}`)
  if (room !== undefined)
    say(
      `     MESH_KEYSTORE=${env.MESH_KEYSTORE} npx mesh post ${room} '@bot hi' --data ${join(root, 'alpha')}`,
    )
  say('Ctrl+C stops the demo.')
  if (process.env.MESH_DEMO_EXIT === '1') await shutdown(0)
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`)
  await shutdown(1)
}

/**
 * A room `lobby` in alpha, and the example agent `bot` enrolled there (SPEC §8: `mesh key
 * new`, `mesh member add --kind agent`) answering mentions in it; one mention to show it.
 * Returns the room id, or undefined (and says why) when the agent could not be started.
 */
async function startExampleAgent(alpha: MeshProcess): Promise<string | undefined> {
  const data = ['--data', join(root, 'alpha')]
  const mesh = async <T>(...args: string[]): Promise<T> => {
    const res = await runMesh([...args, '--json'], env)
    if (res.code !== 0) {
      const why = /"code":"(MESH_\w+)"/.exec(res.stdout)?.[1] ?? res.stderr.trim().split('\n')[0]
      throw new Error(`mesh ${args.slice(0, 2).join(' ')}: ${why}`)
    }
    return JSON.parse(res.stdout) as T
  }
  try {
    const { id } = await mesh<{ id: string }>('room', 'create', 'lobby', ...data)
    const key = await mesh<{ did: string; path: string }>('key', 'new', 'bot')
    await mesh('member', 'add', 'bot', '--kind', 'agent', '--name', 'bot', ...data)
    const agent = startAgent(alpha.http, id, key.path)
    running.push(agent)
    await agent.line(/^ready /)
    say(`\nexample agent @bot (${key.did}) answers mentions in alpha's room lobby ${id}`)
    const { id: hello } = await mesh<{ id: string }>('post', id, '@bot hello', ...data)
    await agent.line(new RegExp(`^answered ${hello} `))
    const { messages } = await mesh<{ messages: Array<{ author: string; body: string }> }>(
      'messages',
      id,
      ...data,
    )
    for (const m of messages) say(`  ${m.author}: ${m.body}`)
    return id
  } catch (err) {
    say(`\nexample agent not started: ${(err as Error).message}`)
    return undefined
  }
}
