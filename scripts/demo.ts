/**
 * `npm run demo`: the whole mission on loopback, every part a separate process — a
 * registry and three meshes finding each other through it and then the DHT; alpha asks
 * beta to connect and beta's architect accepts; alpha shares a room with beta and
 * messages cross both ways; beta enrols the example agent (examples/mention-agent),
 * which joins the shared room through beta and answers a mention alpha's architect
 * makes. Narrated as it goes. Ctrl+C stops it; `--once` (or MESH_DEMO_EXIT=1) exits
 * when the story is told. Either way every process is stopped and the temp dir removed.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type AgentProcess, startAgent } from './lib/mention-agent.ts'
import { getJson, type MeshProcess, runMesh, startMesh, waitFor } from './lib/processes.ts'

const once = process.argv.includes('--once') || process.env.MESH_DEMO_EXIT === '1'
const root = await mkdtemp(join(tmpdir(), 'mesh-demo-'))
const env = { MESH_KEYSTORE: join(root, 'keys'), MESH_LOG_LEVEL: 'warn' }
const running: Array<MeshProcess | AgentProcess> = []
const say = (line: string) => process.stdout.write(`${line}\n`)

let stopping: Promise<never> | undefined
function shutdown(code: number): Promise<never> {
  stopping ??= (async () => {
    await Promise.all(running.map((p) => p.stop('SIGTERM')))
    await rm(root, { recursive: true, force: true })
    process.exit(code)
  })()
  return stopping
}
process.on('SIGINT', () => void shutdown(0))
process.on('SIGTERM', () => void shutdown(0))

type Mesh = MeshProcess & { name: string; data: string[] }

/** Waits on a condition, patiently: a busy machine is slow, not broken. */
const wait = <T>(check: () => Promise<T | undefined | false>, what: string) => waitFor(check, what, 60_000)

/** Runs `mesh <args> --json` against a mesh's data dir and returns its JSON answer. */
async function mesh<T>(at: Mesh | undefined, ...args: string[]): Promise<T> {
  const res = await runMesh([...args, ...(at === undefined ? [] : at.data), '--json'], env)
  if (res.code !== 0) {
    const why = /"code":"(MESH_\w+)"/.exec(res.stdout)?.[1] ?? res.stderr.trim().split('\n')[0]
    throw new Error(`mesh ${args.slice(0, 2).join(' ')}: ${why}`)
  }
  return JSON.parse(res.stdout) as T
}

try {
  say(`demo data in ${root}`)
  const registry = await startMesh(
    ['registry', '--data', join(root, 'registry'), '--http', '127.0.0.1:0', '--heartbeat-interval', '2000'],
    env,
  )
  running.push(registry)
  say(`registry   ${registry.http}`)

  const meshes: Mesh[] = []
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
    meshes.push({ ...mesh, name, data: ['--data', join(root, name)] })
    say(`${name.padEnd(10)} ${mesh.http}  ${mesh.did}`)
  }

  const started = Date.now()
  for (const mesh of meshes) {
    await wait(async () => {
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
  const listed = await wait(async () => {
    const { meshes: all } = await getJson<{
      meshes: Array<{ name: string; status: string; members: number }>
    }>(`${registry.http}/api/meshes/public`)
    return all.length >= meshes.length ? all : undefined
  }, 'the registry to list every mesh')
  say(`\nregistry lists: ${listed.map((m) => `${m.name} ${m.status} members=${m.members}`).join(', ')}`)
  const [alpha, beta] = meshes as [Mesh, Mesh, Mesh]
  const room = await federate(alpha, beta)
  await agentAnswers(alpha, beta, room)
  if (once) {
    say('\nthe demo is done; stopping every process and removing its data.')
    await shutdown(0)
  }
  say(`\ntry: curl ${alpha.http}/.well-known/mesh-manifest.json`)
  say(`     MESH_KEYSTORE=${env.MESH_KEYSTORE} npx mesh messages ${room} --data ${join(root, 'beta')}`)
  say(
    `     MESH_KEYSTORE=${env.MESH_KEYSTORE} npx mesh post ${room} '@helper:beta hi' --data ${join(root, 'alpha')}`,
  )
  say('Ctrl+C stops the demo and removes its data.')
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`)
  await shutdown(1)
}

/**
 * alpha asks beta to connect; beta's architect accepts; alpha shares a room `lobby`
 * with beta; each architect posts and sees the other's message. Returns the room id.
 */
async function federate(alpha: Mesh, beta: Mesh): Promise<string> {
  const betaAddr = beta.listen.find((a) => a.includes('/p2p/')) ?? (beta.did as string)
  const { id: connection } = await mesh<{ id: string }>(alpha, 'connect', betaAddr)
  say(`\nalpha asks beta to connect (connection ${connection})`)
  const status = async (m: Mesh) =>
    (await mesh<Array<{ id: string; status: string }>>(m, 'connections')).find((c) => c.id === connection)
      ?.status
  await wait(async () => (await status(beta)) !== undefined, 'the request to reach beta')
  await mesh(beta, 'accept', connection)
  await wait(async () => (await status(alpha)) === 'accepted', 'alpha to learn the acceptance')
  say("beta's architect accepts: the connection is accepted on both sides")

  const { id: room } = await mesh<{ id: string }>(alpha, 'room', 'create', 'lobby')
  await mesh(alpha, 'share', room, beta.did as string)
  // room lifecycle (SPEC §9): a shared room is an invitation until beta's architect accepts it
  const invitation = await wait(
    async () =>
      (await mesh<Array<{ id: string; room: string; status: string }>>(beta, 'invitations')).find(
        (i) => i.room === room && i.status === 'pending',
      ),
    'the invitation to reach beta',
  )
  await mesh(beta, 'invitation', 'accept', invitation.id)
  say(`beta's architect accepts the invitation to lobby (${invitation.id})`)
  await wait(async () => {
    const rooms = await mesh<Array<{ id: string; federated: boolean }>>(beta, 'rooms')
    return rooms.some((r) => r.id === room && r.federated)
  }, 'beta to adopt the room')
  say(`alpha shares its room lobby (${room}) with beta; beta holds a replica`)

  await mesh(alpha, 'post', room, 'hello beta, from alpha')
  await mesh(beta, 'post', room, 'hello alpha, from beta')
  for (const [m, other] of [
    [alpha, 'hello alpha, from beta'],
    [beta, 'hello beta, from alpha'],
  ] as const) {
    await wait(async () => (await bodies(m, room)).some((b) => b.endsWith(other)), `${m.name} to see it`)
  }
  say('messages cross both ways:')
  for (const line of await bodies(beta, room)) say(`  at beta   ${line}`)
  return room
}

/** beta enrols the example agent `helper`; it joins the shared room through beta and answers alpha's mention. */
async function agentAnswers(alpha: Mesh, beta: Mesh, room: string): Promise<void> {
  const key = await mesh<{ did: string; path: string }>(undefined, 'key', 'new', 'helper')
  await mesh(beta, 'member', 'add', 'helper', '--kind', 'agent', '--name', 'helper')
  const agent = startAgent(beta.http, room, key.path)
  running.push(agent)
  await agent.line(/^ready /)
  say(`\nbeta enrols an agent, @helper (${key.did}); it joins the shared room through beta`)
  const { id: ask } = await mesh<{ id: string }>(alpha, 'post', room, '@helper:beta what is this room?')
  say("alpha's architect asks: @helper:beta what is this room?")
  await agent.line(new RegExp(`^answered ${ask} `), 60_000)
  await wait(
    async () => (await bodies(alpha, room)).some((b) => b.startsWith('@helper:beta:')),
    'the answer to reach alpha',
  )
  say('the answer, as alpha sees it:')
  for (const line of (await bodies(alpha, room)).filter((b) => b.startsWith('@helper:beta:')))
    say(`  at alpha  ${line}`)
}

async function bodies(m: Mesh, room: string): Promise<string[]> {
  const { messages } = await mesh<{ messages: Array<{ author: string; body: string }> }>(m, 'messages', room)
  return messages.map((x) => `${x.author}: ${x.body}`)
}
