/**
 * The example agent (examples/mention-agent/agent.ts) as a separate process against a
 * real node: it signs in with its own key as an enrolled agent, joins a room, answers
 * `@bot` mentions in it (once each, also those made while it was stopped) and ends
 * cleanly on SIGTERM.
 */
import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
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
import { tempDir } from '../fixtures/principals.ts'

const AGENT = fileURLToPath(new URL('../../examples/mention-agent/agent.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** A started node named `name`; `agents` are enrolled (as agents) in its data dir before it starts. */
async function startNode(t: TestContext, name: string, agents: Array<{ did: string; name: string }>) {
  const root = await tempDir(t, 'mesh-agent-e2e-')
  const dataDir = join(root, name)
  const keystore = new HumanKeystore(join(root, 'keys'))
  const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
  await store.open()
  const { info } = await initMesh({ store, dataDir, name, keystore })
  // Until `POST /api/members` (SPEC §8) is here: the members book of the stopped node.
  const members = new MemberBook({ store, architectDid: info.architectDid })
  for (const agent of agents) await members.enroll({ did: agent.did, role: 'agent', name: agent.name })
  await store.close()
  const node = createMeshNode({ dataDir, http: { port: 0 }, logger: silentLogger() })
  await node.start()
  t.after(() => node.stop())
  const architect = await signIn(node.httpUrl, await keystore.load(`${name}-architect`))
  return { node, root, architect }
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
    const { node, architect } = await startNode(t, 'alpha', [{ did: bot.did, name: 'bot' }])
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

  it('creates a missing key file (0600) and, not enrolled, exits 1 with MESH_FORBIDDEN', async (t) => {
    const { node, root, architect } = await startNode(t, 'beta', [])
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
