/**
 * The example agent (examples/mention-agent/agent.ts) as a separate process against a
 * real node: it signs in with its own key as an enrolled agent, joins a room, answers
 * `@bot` mentions in it (once each, also those made while it was stopped) and ends
 * cleanly on SIGTERM.
 */
import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { type AgentProcess, startAgent } from '../../scripts/lib/mention-agent.ts'
import { MemberBook } from '../../src/auth/members.ts'
import { type HttpClient, signIn } from '../../src/cli/http-client.ts'
import { createKeyFile, HumanKeystore } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { initMesh, STORE_DIR } from '../../src/mesh-info.ts'
import { createMeshNode, type MeshNode } from '../../src/mesh-node.ts'
import { MeshStore } from '../../src/store/index.ts'
import { scanImports } from '../architecture/scan-imports.ts'
import { autoAcceptRooms, shareAct, startNode } from '../connections/nodes.ts'
import { freePort } from '../fixtures/e2e.ts'
import { alice, tempDir } from '../fixtures/principals.ts'
import { connect, until } from '../rooms/helpers.ts'

const AGENT = fileURLToPath(new URL('../../examples/mention-agent/agent.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }

/**
 * Enrols `agents` (as agents) in the members book of the stopped node at `dataDir`. Until
 * `POST /api/members` (SPEC §8) is here, this is how a test enrols; after, `mesh member add`.
 */
async function enrolOffline(
  dataDir: string,
  architectDid: string,
  agents: Array<{ did: string; name: string }>,
) {
  const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
  await store.open()
  try {
    const members = new MemberBook({ store, architectDid })
    for (const agent of agents) {
      // Both shapes of a member: `role` before SPEC §8's members book, `kind` after.
      const member = { did: agent.did, kind: 'agent' as const, role: 'agent' as const, name: agent.name }
      await members.enroll(member)
    }
  } finally {
    await store.close()
  }
}

/**
 * A started node named `name` on a fixed loopback HTTP port, with `agents` enrolled before
 * it starts; `restart()` stops it and starts it again on the same port and data.
 */
async function startWithAgents(t: TestContext, name: string, agents: Array<{ did: string; name: string }>) {
  const root = await tempDir(t, 'mesh-agent-e2e-')
  const dataDir = join(root, name)
  const keystore = new HumanKeystore(join(root, 'keys'))
  const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
  await store.open()
  const { info } = await initMesh({ store, dataDir, name, keystore })
  await store.close()
  await enrolOffline(dataDir, info.architectDid, agents)
  const port = await freePort()
  const make = () => createMeshNode({ dataDir, http: { host: '127.0.0.1', port }, logger: silentLogger() })
  const state = { node: make() }
  await state.node.start()
  t.after(() => state.node.stop())
  const architect = await signIn(state.node.httpUrl, await keystore.load(`${name}-architect`))
  const restart = async () => {
    await state.node.stop()
    state.node = make()
    await state.node.start()
  }
  return { node: state.node, root, architect, restart }
}

/** The example agent at `node`, killed (if still running) when the test ends. */
function agentAt(t: TestContext, node: MeshNode, room: string, keyPath: string): AgentProcess {
  const agent = startAgent(node.httpUrl, room, keyPath)
  t.after(() => agent.stop('SIGKILL'))
  return agent
}

async function post(api: HttpClient, room: string, body: string): Promise<string> {
  return (await api.api.call('postMessage', { params: { id: room }, body: { body } })).id
}

async function messagesOf(api: HttpClient, room: string) {
  return (await api.api.call('listMessages', { params: { id: room }, query: { limit: '200' } })).messages
}

describe('the example mention agent', () => {
  it('joins the room as @bot, answers a mention, stops on SIGTERM, and answers what it missed once', async (t) => {
    const keyDir = await tempDir(t, 'mesh-agent-key-')
    const keyPath = join(keyDir, 'bot.json')
    const bot = await createKeyFile(keyPath, 'human', 'bot')
    const { node, architect } = await startWithAgents(t, 'alpha', [{ did: bot.did, name: 'bot' }])
    const { id: room } = await architect.api.call('createRoom', { body: { name: 'lobby' } })

    const first = agentAt(t, node, room, keyPath)
    const ready = await first.line(/^ready did=(\S+) name=(\S+) room=(\S+)$/)
    assert.deepEqual(ready.slice(1), [bot.did, '@bot', room])
    const members = await architect.api.call('roomMembers', { params: { id: room } })
    assert.ok(members.members.some((m) => m.did === bot.did && m.name === '@bot'))

    const hello = await post(architect, room, '@bot hello')
    const answered = await first.line(new RegExp(`^answered ${hello} reply=(\\S+)$`))
    const reply = (await messagesOf(architect, room)).find((m) => m.id === answered[1])
    assert.ok(reply, 'the reply is in the room')
    assert.equal(reply.authorDid, bot.did)
    assert.equal(reply.author, '@bot')
    assert.equal(reply.replyTo, hello)
    assert.match(reply.body, /^@alpha-architect hello, I am @bot, .*You said: @bot hello$/)

    first.proc.kill('SIGTERM')
    assert.deepEqual(await first.exited, [0, null])
    assert.equal(first.lines.at(-1), 'stopped')

    // While it is stopped: a mention, and a message that names no one.
    const missed = await post(architect, room, '@bot are you there?')
    await post(architect, room, 'nobody here')
    const second = agentAt(t, node, room, keyPath)
    await second.line(new RegExp(`^answered ${missed} reply=`))
    // Sentinel: a mention after the restart is answered, and by then nothing was answered twice.
    const sentinel = await post(architect, room, 'last one, @bot')
    await second.line(new RegExp(`^answered ${sentinel} reply=`))
    const all = await messagesOf(architect, room)
    const replies = all.filter((m) => m.authorDid === bot.did)
    assert.deepEqual(replies.map((m) => m.replyTo).sort(), [hello, missed, sentinel].sort())
    assert.equal(second.lines.filter((l) => l.startsWith('answered ')).length, 2)
    second.proc.kill('SIGTERM')
    assert.deepEqual(await second.exited, [0, null])
  })

  it('rides out a restart of its node: it connects again with a fresh ticket and answers', async (t) => {
    const keyPath = join(await tempDir(t, 'mesh-agent-key-'), 'bot.json')
    const bot = await createKeyFile(keyPath, 'human', 'bot')
    const { node, architect, restart } = await startWithAgents(t, 'alpha', [{ did: bot.did, name: 'bot' }])
    const { id: room } = await architect.api.call('createRoom', { body: { name: 'lobby' } })
    const agent = agentAt(t, node, room, keyPath)
    await agent.line(/^ready /)
    await restart()
    await agent.line(/^closed /)
    const ask = await post(architect, room, '@bot still there?')
    await agent.line(new RegExp(`^answered ${ask} reply=`))
    assert.equal(agent.lines.filter((l) => l.startsWith('ready ')).length, 1)
  })

  it('an agent of beta answers, through beta, a mention in a room that alpha shared with beta', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    const b = await startNode(t, 'beta', { rooms: ROOMS })
    const keyPath = join(await tempDir(t, 'mesh-agent-key-'), 'helper.json')
    const helper = await createKeyFile(keyPath, 'human', 'helper')
    await b.stop()
    await enrolOffline(b.dataDir, b.architect.did, [{ did: helper.did, name: 'helper' }])
    await b.restart()
    await connect(a, b)
    const { id: room } = await a.api.api.call('createRoom', { body: { name: 'general' } })
    await autoAcceptRooms(b)
    await a.api.post(`/api/rooms/${room}/share`, {
      mesh: b.node.did,
      ucan: await shareAct(a, room, b.node.did),
    })
    await until(async () => (await b.node.rooms.list()).some((r) => r.id === room), 'beta adopts the room')
    // Until a member of beta may join a room shared with beta by itself (SPEC §8, agents in
    // foreign rooms 1), beta admits its agent; the agent's own join then finds it a member.
    await b.node.rooms.join(room, helper.did)

    const agent = agentAt(t, b.node, room, keyPath)
    await agent.line(/^ready .* name=@helper /)
    await until(
      async () =>
        (await a.api.api.call('roomMembers', { params: { id: room } })).members.some(
          (m) => m.did === helper.did && m.name === '@helper:beta' && m.tier === 4,
        ),
      'alpha lists @helper:beta at tier 4',
    )
    const ask = await post(a.api, room, '@helper:beta what is new?')
    await agent.line(new RegExp(`^answered ${ask} reply=`))
    const reply = await until(
      async () => (await messagesOf(a.api, room)).find((m) => m.replyTo === ask),
      'the reply reaches alpha',
    )
    assert.equal(reply.author, '@helper:beta')
    assert.equal(reply.authorDid, helper.did)
    assert.match(reply.body, /^@alpha-architect:alpha hello, I am @helper, /)
    await agent.stop('SIGTERM')
    assert.deepEqual(await agent.exited, [0, null])
  })

  it('creates a missing key file (0600) and, not enrolled, exits 1 with MESH_FORBIDDEN', async (t) => {
    const { node, root, architect } = await startWithAgents(t, 'beta', [])
    const { id: room } = await architect.api.call('createRoom', { body: { name: 'lobby' } })
    const keyPath = join(root, 'stranger.json')
    const agent = agentAt(t, node, room, keyPath)
    const [, did] = await agent.line(/^key did=(\S+) new=true$/)
    assert.deepEqual(await agent.exited, [1, null])
    assert.match(agent.lines.at(-1) ?? '', /^error MESH_FORBIDDEN /)
    assert.equal(statSync(keyPath).mode & 0o777, 0o600)
    assert.equal((JSON.parse(readFileSync(keyPath, 'utf8')) as { did: string }).did, did)
    const members = await architect.api.call('roomMembers', { params: { id: room } })
    assert.ok(!members.members.some((m) => m.did === did))

    // A key file whose did is not its seed's is refused before anything is sent.
    const forged = join(root, 'forged.json')
    const file = JSON.parse(readFileSync(keyPath, 'utf8')) as { did: string }
    writeFileSync(forged, JSON.stringify({ ...file, did: alice.did }), { mode: 0o600 })
    const liar = agentAt(t, node, room, forged)
    assert.deepEqual(await liar.exited, [1, null])
    assert.match(liar.lines.at(-1) ?? '', /^error MESH_BAD_REQUEST .*does not match its seed/)
    writeFileSync(forged, '{"version":1,"type":"Ed25519","seed":"AAAA"}', { mode: 0o600 })
    const short = agentAt(t, node, room, forged)
    assert.deepEqual(await short.exited, [1, null])
    assert.match(short.lines.at(-1) ?? '', /^error MESH_BAD_REQUEST .*is not an Ed25519 key file/)
  })

  it('imports only the public API (src/api), yjs, y-websocket and node built-ins', () => {
    const dir = dirname(AGENT)
    for (const { specifier } of scanImports(readFileSync(AGENT, 'utf8'))) {
      if (specifier.startsWith('.')) {
        const target = resolve(dir, specifier)
        assert.ok(target.startsWith(join(ROOT, 'src', 'api')), `${specifier} is outside src/api`)
      } else {
        assert.ok(/^(node:|yjs$|y-websocket$)/.test(specifier), `${specifier} is not allowed`)
      }
    }
  })
})
