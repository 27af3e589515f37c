import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { getJson, runMesh, waitFor } from '../../scripts/lib/processes.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import {
  acceptRoom,
  type CliMesh,
  connectAndShareRoom,
  connectionView,
  type E2E,
  e2e,
  freePort,
  startSyncingMesh,
} from '../fixtures/e2e.ts'

// reachability (SPEC §10): WebSockets beside TCP, and meshes reached through a circuit relay.

type Msg = { id: string; body: string }

/**
 * `x` connects to `y` at `address` and `y` accepts; `x` shares a room with `y`, each posts and
 * both see both messages; `x`'s architect invokes `y`'s echo agent under `y`'s delegation.
 */
async function federate(e: E2E, x: CliMesh, y: CliMesh, address: string): Promise<void> {
  const { cli } = e
  const c = await cli<{ id: string }>(x, 'connect', address)
  await waitFor(async () => (await connectionView(y, c.id))?.status === 'pending', `request at ${y.name}`)
  await cli(y, 'accept', c.id)
  await waitFor(async () => (await connectionView(x, c.id))?.status === 'accepted', `accepted at ${x.name}`)

  const room = await cli<{ id: string }>(x, 'room', 'create', 'general')
  await cli(x, 'share', room.id, y.did as string)
  await acceptRoom(cli, y, room.id) // y's architect accepts the invitation (SPEC §9)
  await waitFor(async () => {
    const rooms = await cli<Array<{ id: string; federated: boolean }>>(y, 'rooms')
    return rooms.some((r) => r.id === room.id && r.federated)
  }, `${y.name} adopts the room`)
  await cli(x, 'post', room.id, `hello from ${x.name}`)
  await cli(y, 'post', room.id, `hello from ${y.name}`)
  const bodies = async (m: CliMesh) =>
    (await (m.api as HttpClient).get<{ messages: Msg[] }>(`/api/rooms/${room.id}/messages?limit=50`)).messages
      .map((msg) => msg.body)
      .sort()
  const both = [`hello from ${x.name}`, `hello from ${y.name}`].sort()
  await waitFor(
    async () => JSON.stringify(await bodies(x)) === JSON.stringify(both),
    `both messages at ${x.name}`,
    30_000,
  )
  await waitFor(
    async () => JSON.stringify(await bodies(y)) === JSON.stringify(both),
    `both messages at ${y.name}`,
    30_000,
  )

  // Invocation over the same connection: y delegates echo to x's architect.
  const architect = (await e.keystore.load(`${x.name}-architect`)).did
  const grant = await cli<{ token: string }>(
    y,
    ...['delegate', architect, 'agent/invoke', '--agent', 'echo', '--skill', 'echo'],
  )
  const file = join(e.root, `${x.name}-${y.name}.ucan`)
  await writeFile(file, grant.token)
  await cli(y, 'trust', architect, '--tier', '3', '--reason', 'test')
  // Through a relay on a busy machine a first stream can outlast one exchange's timeout
  // (MESH_UNAVAILABLE, the peer not reached): a person tries again, and so does this.
  const res = await waitFor(
    async () => {
      try {
        return await cli<{ mesh: string; answer: { result: { echo: unknown } } }>(
          x,
          ...['outbound', 'invoke', y.did as string, 'echo', 'echo', '--input', '{"text":"hi"}'],
          ...['--proof', `@${file}`],
        )
      } catch (err) {
        if (/MESH_UNAVAILABLE/.test(String(err))) return undefined
        throw err
      }
    },
    `${x.name} invokes ${y.name}'s echo`,
    90_000,
  )
  assert.equal(res.mesh, y.did)
  assert.deepEqual(res.answer.result.echo, { text: 'hi' })
}

describe('reachability across processes (SPEC §10)', () => {
  it('WebSockets: a mesh listening on ws alone and one on tcp+ws connect, share a room and invoke over it', async (t) => {
    const e = await e2e(t, 'mesh-ws-e2e-', { logLevel: 'warn' })
    const wsOnly = await startSyncingMesh(e, 'alpha', ['--listen', '/ip4/127.0.0.1/tcp/0/ws'])
    const both = await startSyncingMesh(e, 'beta', [
      ...['--listen', '/ip4/127.0.0.1/tcp/0', '--listen', '/ip4/127.0.0.1/tcp/0/ws'],
    ])
    const alphaAddresses = wsOnly.proc?.listen ?? []
    assert.ok(alphaAddresses.length > 0)
    for (const a of alphaAddresses) assert.match(a, /\/tcp\/\d+\/ws\/p2p\//)
    assert.ok(both.proc?.listen.some((a) => /\/ws\//.test(a)))
    assert.ok(both.proc?.listen.some((a) => !/\/ws\//.test(a)))
    await federate(e, both, wsOnly, alphaAddresses[0] as string)
  })

  it('relay: a mesh with no dialable address is reached through a relay; handshake, room and invocation cross it', async (t) => {
    const e = await e2e(t, 'mesh-relay-e2e-', { logLevel: 'warn' })
    // The relay also serves a registry; the hidden mesh is public there (heartbeats).
    const relay = await startSyncingMesh(e, 'relay', [
      ...['--listen', '/ip4/127.0.0.1/tcp/0', '--relay'],
      ...['--serve-registry', '--heartbeat-interval', '500'],
    ])
    const relayAddress = relay.proc?.listen[0] as string
    // hidden: no listen address but the reservation on the relay.
    const hidden = await startSyncingMesh(e, 'hidden', [
      ...['--listen', '/p2p-circuit', '--relay-via', relayAddress, '--bootstrap', relayAddress],
      ...['--registry', relay.proc?.http as string, '--public', '--heartbeat-interval', '500'],
      ...['--discovery-interval', '1000'],
    ])
    const hiddenAddresses = hidden.proc?.listen ?? []
    assert.ok(hiddenAddresses.length > 0, 'the hidden mesh has its relay address at ready')
    for (const a of hiddenAddresses) assert.match(a, /\/p2p-circuit\/p2p\//)
    assert.ok(hiddenAddresses.some((a) => a.startsWith(`${relayAddress}/p2p-circuit`)))
    // The peer is hidden too, so that no connection between the two can be direct: whatever
    // crosses (handshake both ways, room sync, invocation) crosses the relay.
    const peer = await startSyncingMesh(e, 'peer', [
      ...['--listen', '/p2p-circuit', '--relay-via', relayAddress, '--bootstrap', relayAddress],
      ...['--discovery-interval', '1000'],
    ])
    assert.ok(peer.proc?.listen.every((a) => a.includes('/p2p-circuit/')))

    // The heartbeat carries the relay addresses: the registry lists them.
    await waitFor(async () => {
      const { meshes } = await getJson<{ meshes: Array<{ did: string; multiaddrs: string[] }> }>(
        `${relay.proc?.http}/api/meshes/public?limit=100`,
      )
      const listed = meshes.find((m) => m.did === hidden.did)
      return listed !== undefined && JSON.stringify(listed.multiaddrs) === JSON.stringify(hiddenAddresses)
    }, 'the registry to list the hidden mesh by its relay addresses')

    // The peer knows the hidden mesh by its did alone: the DHT gives its relay addresses.
    await federate(e, peer, hidden, hidden.did as string)

    // Each node says how it is reached (GET /api/health).
    type Health = {
      reachability: { status: string; relayAddresses: string[]; relay: boolean; reservations: number }
    }
    const health = async (m: CliMesh) => (await (m.api as HttpClient).get<Health>('/api/health')).reachability
    const atHidden = await health(hidden)
    assert.equal(atHidden.status, 'relayed')
    assert.deepEqual(atHidden.relayAddresses, hiddenAddresses)
    assert.equal(atHidden.relay, false)
    const atRelay = await health(relay)
    assert.deepEqual([atRelay.status, atRelay.relay, atRelay.reservations], ['unknown', true, 2])
  })

  it('relay limits: circuits cut at their byte limit are dialled again, and a room keeps syncing across the cuts', async (t) => {
    const e = await e2e(t, 'mesh-relay-cut-e2e-', { logLevel: 'warn' })
    // 256 KiB per circuit: the messages below cross several circuits.
    const relay = await startSyncingMesh(e, 'relay', [
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--relay-circuit-bytes',
      '262144',
    ])
    const relayAddress = relay.proc?.listen[0] as string
    const hidden = await startSyncingMesh(e, 'hidden', [
      '--listen',
      '/p2p-circuit',
      '--relay-via',
      relayAddress,
    ])
    const peer = await startSyncingMesh(e, 'peer', ['--listen', '/p2p-circuit', '--relay-via', relayAddress])
    const room = { id: await connectAndShareRoom(e, peer, hidden, hidden.proc?.listen[0] as string, 'bulk') }
    // 1 MiB of messages from both sides, four times what one circuit carries.
    const body = (i: number) => `${i} ${'x'.repeat(8000)}`
    for (let i = 0; i < 128; i++) {
      await (i % 2 === 0 ? peer : hidden).api?.post(`/api/rooms/${room.id}/messages`, { body: body(i) })
    }
    const count = async (m: CliMesh) => {
      let n = 0
      let after: string | null = null
      for (;;) {
        const page: { messages: Msg[]; nextCursor: string | null } = await (m.api as HttpClient).get(
          `/api/rooms/${room.id}/messages?limit=200${after !== null ? `&after=${after}` : ''}`,
        )
        n += page.messages.length
        if (page.nextCursor === null) return n
        after = page.nextCursor
      }
    }
    await waitFor(
      async () => (await count(peer)) === 128 && (await count(hidden)) === 128,
      'all 128 on both',
      90_000,
    )
  })

  it('a relay named without its peer id, or one that cannot be reached, stops the start with a code', async (t) => {
    const e = await e2e(t, 'mesh-relay-refused-e2e-', { logLevel: 'warn' })
    const start = async (relay: string) => {
      const res = await runMesh(
        ['start', '--data', join(e.root, 'm'), '--http', '127.0.0.1:0', '--relay-via', relay, '--json'],
        e.env,
      )
      assert.equal(res.code, 1, res.stderr)
      return (JSON.parse(res.stdout) as { error: { code: string; details: Record<string, unknown> } }).error
    }
    assert.equal((await start('/ip4/127.0.0.1/tcp/4001')).code, 'MESH_BAD_REQUEST')
    const dead = `/ip4/127.0.0.1/tcp/${await freePort()}/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA`
    const unreachable = await start(dead)
    assert.equal(unreachable.code, 'MESH_UNAVAILABLE')
    assert.deepEqual(unreachable.details.relays, [dead])
  })
})
