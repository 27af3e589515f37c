import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { loadMesh, STORE_DIR } from '../../src/mesh-info.ts'
import { createMeshLibp2p } from '../../src/p2p/index.ts'
import { MESH_ROOMS_PROTOCOL } from '../../src/rooms/index.ts'
import { INBOUND_DEFAULTS } from '../../src/rooms/link-manager.ts'
import { MeshStore } from '../../src/store/index.ts'
import { autoAcceptRooms, shareAct, startNode, type TestNode } from '../connections/nodes.ts'
import { connect, until } from './helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }

async function share(from: TestNode, room: string, to: TestNode) {
  await autoAcceptRooms(to)
  return from.api.post(`/api/rooms/${room}/share`, {
    mesh: to.node.did,
    ucan: await shareAct(from, room, to.node.did),
  })
}

async function messages(n: TestNode, room: string): Promise<Array<{ body: string }>> {
  return (await n.api.get<{ messages: Array<{ body: string }> }>(`/api/rooms/${room}/messages?limit=200`))
    .messages
}

/** Resolves when the stream is closed or reset, whichever end did it. */
function closed(stream: Stream): Promise<void> {
  if (stream.status !== 'open') return Promise.resolve()
  return new Promise((resolve) => stream.addEventListener('close', () => resolve(), { once: true }))
}

describe('inbound /mesh/rooms/1.0.0 streams are metered before any work', () => {
  it('a host with no accepted connection: every stream reset at once, no reload per stream; a connected peer is served meanwhile', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    const b = await startNode(t, 'beta', { rooms: ROOMS })
    await connect(a, b)
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'general' })
    await share(a, id, b)
    await until(
      async () => (await b.api.get<{ rooms: unknown[] }>('/api/rooms')).rooms.length === 1,
      'adopted',
    )
    // The share's principal joins once the room's meta arrives (replicator.ts): the sentinel posts as it.
    await until(async () => (await b.node.rooms.load(id)).member(b.architect.did), 'beta’s architect joined')

    // Every reload of key histories and of the accepted peers, whoever asks for it.
    let refreshes = 0
    let peerLoads = 0
    const keys = a.node.rooms.meshKeys
    const refresh = keys.refresh.bind(keys)
    keys.refresh = async () => {
      refreshes++
      return refresh()
    }
    const connections = a.node.connections
    const peers = connections.peers.bind(connections)
    connections.peers = async () => {
      peerLoads++
      return peers()
    }

    const stranger = await createMeshLibp2p({ key: new Ed25519KeyPair(Buffer.alloc(32, 99)) })
    t.after(() => stranger.stop())
    const started = Date.now()
    const flood = 300
    let reset = 0
    const sentinel = b.api.post(`/api/rooms/${id}/messages`, { body: 'during the flood' })
    for (let i = 0; i < flood; i++) {
      let stream: Stream
      try {
        stream = await stranger.dialProtocol(multiaddr(a.addr()), MESH_ROOMS_PROTOCOL)
      } catch {
        reset++ // refused by the per-connection limit before the handler: as good
        continue
      }
      await closed(stream)
      reset++
    }
    const elapsed = Date.now() - started
    assert.equal(reset, flood)
    // The periodic check reloads every 200 ms; the flood adds at most one reload for each
    // stranger window (a key found a stranger is refused without one for 2 s), not one per
    // stream. On a loaded machine the flood lasts long enough for several windows.
    const periodic =
      Math.ceil(elapsed / ROOMS.syncIntervalMs) + Math.ceil(elapsed / INBOUND_DEFAULTS.refreshIntervalMs) + 2
    assert.ok(refreshes <= periodic, `${refreshes} key refreshes in ${elapsed} ms for ${flood} streams`)
    assert.ok(peerLoads <= periodic, `${peerLoads} peer reloads in ${elapsed} ms for ${flood} streams`)
    assert.ok(a.node.roomSync.stats.streamsRefused >= flood - 4)

    // Sentinel: the accepted peer was served throughout.
    await sentinel
    await until(
      async () => (await messages(a, id)).some((m) => m.body === 'during the flood'),
      'beta message at alpha',
    )
    assert.ok(a.node.roomSync.links().includes(b.node.did))
  })

  it('a connected peer opening more new streams than its allowance: the rest reset at once', async (t) => {
    const max = 3
    const a = await startNode(t, 'alpha', { rooms: { ...ROOMS, inbound: { maxNewStreamsPerPeer: max } } })
    const m = await startNode(t, 'mallory', { rooms: ROOMS })
    await connect(m, a)
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'with-mallory' })
    await share(a, id, m)
    await until(
      async () => (await m.api.get<{ rooms: unknown[] }>('/api/rooms')).rooms.length === 1,
      'adopted',
    )

    // Mallory's node steps aside; a bare host with its (accepted) key opens streams by hand.
    const dataDir = m.dataDir
    await m.stop()
    const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
    await store.open()
    const { key } = await loadMesh(store, dataDir)
    await store.close()
    const host = await createMeshLibp2p({ key })
    t.after(() => host.stop())
    // A fresh window: mallory's node opened links before stepping aside.
    await until(() => a.node.roomSync.links().length === 0, 'mallory’s old link closed')
    const opened = a.node.roomSync.stats.linksOpened
    const refused = a.node.roomSync.stats.streamsRefused ?? 0
    const streams: Stream[] = []
    for (let i = 0; i < max * 3; i++) {
      streams.push(await host.dialProtocol(multiaddr(a.addr()), MESH_ROOMS_PROTOCOL))
      await until(
        () =>
          a.node.roomSync.stats.linksOpened + (a.node.roomSync.stats.streamsRefused ?? 0) >
          opened + refused + i,
        `stream ${i} handled`,
      )
    }
    const accepted = a.node.roomSync.stats.linksOpened - opened
    assert.ok(accepted <= max, `${accepted} links opened, allowance ${max}`)
    assert.ok(a.node.roomSync.stats.streamsRefused - refused >= max * 3 - max)
    // The rejected log is written after the refusal is counted: wait for the row.
    await until(async () => {
      const rejected = await a.api.get<{ entries: Array<{ details: { reason?: string } }> }>(
        '/api/federation/rejected?limit=200',
      )
      return rejected.entries.some((e) => e.details.reason === 'stream-rate')
    }, 'the stream-rate refusal in the rejected log')
  })
})
