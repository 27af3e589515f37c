import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { invocationToken } from '../../src/cli/chains.ts'
import { type HttpClient, signIn } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair, MESH_KEY_FILE, readKeyFile } from '../../src/identity/index.ts'
import { contentId, type MessageEntry, makeSeal, refusalOf, sealKey } from '../../src/rooms/index.ts'
import { rootOf } from '../auth/chain-acts.ts'
import { autoAcceptRooms, shareAct, startNode, type TestNode } from '../connections/nodes.ts'
import { connect, craft, until } from './helpers.ts'

/**
 * Issue 12, agents in foreign rooms way (1), with kinds across meshes, over real nodes
 * (libp2p on loopback, LevelDB, HTTP): members enrolled by the members routes carry
 * their membership credential into every room they join; a peer shows their kind. Any
 * enrolled member of beta joins a room alpha shared with beta through beta, and alpha
 * shows it `@name:beta` at tier 4 with its kind; removed at beta, alpha refuses its
 * later writes.
 */

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }
const carol = new Ed25519KeyPair(Buffer.alloc(32, 51))
const bot = new Ed25519KeyPair(Buffer.alloc(32, 52))
const dave = new Ed25519KeyPair(Buffer.alloc(32, 53))
const helper = new Ed25519KeyPair(Buffer.alloc(32, 54))

type RoomMember = { did: string; name: string; tier: number; kind?: string; local: boolean }
type Msg = { id: string; author: string; authorDid: string; body: string }
type RejectedEntry = { code: string; details: Record<string, unknown> }

/** Enrols `key` on `node` by the SPEC §8 route, under its architect's `mesh/enrol` act. */
async function enrol(node: TestNode, key: Ed25519KeyPair, kind: 'human' | 'agent', name: string) {
  const role = kind === 'human' ? 'user' : 'agent'
  const ucan = await invocationToken(
    node.architect,
    node.node.did,
    { can: 'mesh/enrol', with: node.node.did, nb: { did: key.did, kind, role } },
    [await rootOf(node)],
  )
  await node.api.post('/api/members', { did: key.did, kind, name, ucan })
}

async function remove(node: TestNode, did: string) {
  const ucan = await invocationToken(
    node.architect,
    node.node.did,
    { can: 'mesh/remove', with: node.node.did, nb: { did } },
    [await rootOf(node)],
  )
  await node.api.request('DELETE', `/api/members/${did}`, { ucan })
}

const membersOf = async (api: HttpClient, room: string) =>
  (await api.get<{ members: RoomMember[] }>(`/api/rooms/${room}/members`)).members
const messagesOf = async (api: HttpClient, room: string) =>
  (await api.get<{ messages: Msg[] }>(`/api/rooms/${room}/messages?limit=200`)).messages
const byDid = (members: RoomMember[]) =>
  Object.fromEntries(members.map((m) => [m.did, [m.name, m.tier, m.kind ?? 'unknown']]))

describe('members of both meshes in a shared room, with their kinds', () => {
  it('beta sees alpha’s human and agent with their kind; beta’s enrolled human and agent join through beta; removed at beta, alpha refuses their writes', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    const b = await startNode(t, 'beta', { rooms: ROOMS })
    await connect(a, b)
    await enrol(a, carol, 'human', 'carol')
    await enrol(a, bot, 'agent', 'bot')
    await enrol(b, dave, 'human', 'dave')
    await enrol(b, helper, 'agent', 'helper')
    const asCarol = await signIn(a.node.httpUrl, carol)
    const asBot = await signIn(a.node.httpUrl, bot)

    // Alpha's room, shared with beta; carol and bot join and post at alpha.
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'shared' })
    await asCarol.post(`/api/rooms/${id}/join`, {})
    await asBot.post(`/api/rooms/${id}/join`, {})
    await asCarol.post(`/api/rooms/${id}/messages`, { body: 'hello from carol' })
    await asBot.post(`/api/rooms/${id}/messages`, { body: 'beep from bot' })
    await autoAcceptRooms(b)
    await a.api.post(`/api/rooms/${id}/share`, { mesh: b.node.did, ucan: await shareAct(a, id, b.node.did) })

    // Beta's human and agent (not its architect) find the room, join it through beta, and post.
    const asDave = await signIn(b.node.httpUrl, dave)
    const asHelper = await signIn(b.node.httpUrl, helper)
    await until(
      async () =>
        (await asDave.get<{ rooms: Array<{ id: string }> }>('/api/rooms')).rooms.some((r) => r.id === id),
      'the shared room listed to dave at beta',
    )
    const joined = await asDave.post<RoomMember>(`/api/rooms/${id}/join`, {})
    assert.deepEqual([joined.name, joined.tier, joined.kind], ['@dave', 4, 'human'])
    await asHelper.post(`/api/rooms/${id}/join`, {})
    await until(async () => (await messagesOf(asDave, id)).length >= 2, 'alpha’s history at beta')
    const fromDave = await asDave.post<{ id: string }>(`/api/rooms/${id}/messages`, { body: 'dave here' })
    const fromHelper = await asHelper.post<{ id: string }>(`/api/rooms/${id}/messages`, {
      body: '@carol helper here',
    })

    // Beta's view: alpha's members at tier 4, each with the kind its credential says.
    const atBeta = byDid(await membersOf(asDave, id))
    assert.deepEqual(atBeta[carol.did], ['@carol:alpha', 4, 'human'])
    assert.deepEqual(atBeta[bot.did], ['@bot:alpha', 4, 'agent'])
    assert.deepEqual(atBeta[a.architect.did]?.slice(1), [1, 'human'])
    assert.deepEqual(atBeta[helper.did], ['@helper', 4, 'agent'])

    // Alpha's view: beta's members as `@name:beta`, tier 4, with their kind; their posts arrive.
    await until(async () => {
      const ids = (await messagesOf(a.api, id)).map((m) => m.id)
      return ids.includes(fromDave.id) && ids.includes(fromHelper.id)
    }, 'beta’s members’ posts at alpha')
    const atAlpha = byDid(await membersOf(a.api, id))
    assert.deepEqual(atAlpha[dave.did], ['@dave:beta', 4, 'human'])
    assert.deepEqual(atAlpha[helper.did], ['@helper:beta', 4, 'agent'])
    assert.deepEqual(atAlpha[carol.did], ['@carol', 4, 'human'])
    assert.deepEqual(atAlpha[bot.did], ['@bot', 4, 'agent'])
    const posted = (await messagesOf(a.api, id)).find((m) => m.id === fromHelper.id)
    assert.equal(posted?.author, '@helper:beta')

    // Dave reads and writes over y-websocket too, through beta.
    const { ticket } = await asDave.post<{ ticket: string }>(`/api/rooms/${id}/yjs-ticket`, {})
    const doc = new Y.Doc()
    const provider = new WebsocketProvider(`ws://${new URL(b.node.httpUrl).host}/yjs`, id, doc, {
      params: { token: ticket },
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
      shouldReconnect: () => false,
    } as ConstructorParameters<typeof WebsocketProvider>[3])
    t.after(() => {
      provider.destroy()
      doc.destroy()
    })
    await until(() => doc.getMap('messages').has(fromHelper.id), 'dave’s y-websocket replica synced')
    const overWs: MessageEntry = {
      v: 1,
      room: id,
      author: dave.did,
      authorMesh: b.node.did,
      body: 'dave over y-websocket',
      mentions: [],
      ts: Date.now(),
    }
    doc.getMap('messages').set(contentId(overWs), overWs)
    await until(
      async () =>
        (await messagesOf(a.api, id)).some((m) => m.body === overWs.body && m.author === '@dave:beta'),
      'dave’s y-websocket write, sealed by beta, at alpha',
    )

    // Hostile: a did that is no member of beta cannot see or join the shared room through beta.
    const stranger = Ed25519KeyPair.generate()
    await assert.rejects(signIn(b.node.httpUrl, stranger), { code: 'MESH_FORBIDDEN' })

    // Beta removes dave: his memberships end by an entry beta seals; alpha takes it.
    await remove(b, dave.did)
    const roomA = await a.node.rooms.load(id)
    await until(() => roomA.endedAt(dave.did, b.node.did) !== undefined, 'dave’s ending at alpha')
    assert.equal(byDid(await membersOf(a.api, id))[dave.did], undefined, 'no longer listed at alpha')
    await assert.rejects(asDave.post(`/api/rooms/${id}/messages`, { body: 'still?' }), {
      code: 'MESH_UNAUTHENTICATED',
    })
    await assert.rejects(signIn(b.node.httpUrl, dave), { code: 'MESH_FORBIDDEN' })

    // A later write by dave sealed by beta's key (what a replica of beta that missed the
    // removal would send) is refused at alpha, and logged.
    const betaKey = await readKeyFile(join(b.dataDir, MESH_KEY_FILE))
    const late: MessageEntry = { ...overWs, body: 'after my removal', ts: Date.now() + 1000 }
    const key = contentId(late)
    const client = '990001'
    const binding = { mesh: b.node.did, room: id }
    const update = craft(
      roomA,
      (d) =>
        d.transact(() => {
          d.getMap('clients').set(client, binding)
          d.getMap('seals').set(sealKey('clients', client), makeSeal(betaKey, id, 'clients', client, binding))
          d.getMap('messages').set(key, late)
          d.getMap('seals').set(sealKey('messages', key), makeSeal(betaKey, id, 'messages', key, late))
        }),
      Number(client),
    )
    const refused = await roomA.applyUpdate(update, { kind: 'peer', meshDid: b.node.did })
    assert.equal(refusalOf(refused)?.code, 'MESH_UPDATE_REJECTED')
    assert.equal(refusalOf(refused)?.details.reason, 'membership-ended')
    assert.equal(roomA.message(key), undefined)
    const logged = await until(
      async () =>
        (await a.api.get<{ entries: RejectedEntry[] }>('/api/federation/rejected?limit=200')).entries.find(
          (e) => e.details.reason === 'membership-ended',
        ),
      'the refusal in alpha’s rejected log',
    )
    assert.equal(logged.code, 'MESH_UPDATE_REJECTED')

    // Sentinel: beta's agent still posts, and alpha takes it.
    const sentinel = await asHelper.post<{ id: string }>(`/api/rooms/${id}/messages`, { body: 'sentinel' })
    await until(
      async () => (await messagesOf(a.api, id)).some((m) => m.id === sentinel.id),
      'beta’s sentinel at alpha',
    )
  })
})
