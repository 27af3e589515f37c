import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runMesh, waitFor } from '../../scripts/lib/processes.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import type { RoomSyncStatus } from '../../src/rooms/index.ts'
import { acceptRoom, connectCli, e2e, type FixedPortMesh, fixedPortMeshes } from '../fixtures/e2e.ts'

type Mesh = FixedPortMesh

type Msg = { id: string; author: string; body: string; mesh: string }

describe('shared rooms across processes, driven by the CLI', () => {
  it('two and three meshes: both ways, every message exactly once, offline catch-up in chunks, SIGKILL mid-burst', async (t) => {
    const e = await e2e(t, 'mesh-rooms-e2e-', { logLevel: 'warn' })
    const { env, cli } = e
    const { mesh, start } = fixedPortMeshes(e)
    const meshes: Mesh[] = []
    for (const name of ['alpha', 'beta', 'gamma']) meshes.push(await mesh(name))
    const [alpha, beta, gamma] = meshes as [Mesh, Mesh, Mesh]
    const api = (m: Mesh) => m.api as HttpClient

    const connect = (x: Mesh, y: Mesh) => connectCli(e, x, y)
    const all = async (m: Mesh, room: string): Promise<Msg[]> => {
      const out: Msg[] = []
      let after: string | null = null
      for (;;) {
        const page: { messages: Msg[]; nextCursor: string | null } = await api(m).get(
          `/api/rooms/${room}/messages?limit=200${after !== null ? `&after=${after}` : ''}`,
        )
        out.push(...page.messages)
        if (page.nextCursor === null) return out
        after = page.nextCursor
      }
    }
    const stateVector = async (m: Mesh, room: string) =>
      (await api(m).get<{ stateVector: string }>(`/api/rooms/${room}`)).stateVector
    // `atLeast`: a post written just before a SIGKILL may be stored without its answer
    // reaching the client, so it exists without having been acknowledged.
    const converged = (room: string, count: number, what: string, timeoutMs = 60_000, atLeast = false) =>
      waitFor(
        async () => {
          const lists = await Promise.all(meshes.map((m) => all(m, room)))
          if (!lists.every((l) => (atLeast ? l.length >= count : l.length === count))) return false
          const ids = lists.map((l) => l.map((m) => m.id).join())
          if (new Set(ids).size !== 1) return false
          const svs = await Promise.all(meshes.map((m) => stateVector(m, room)))
          return new Set(svs).size === 1 ? lists[0] : false
        },
        what,
        timeoutMs,
        250,
      )

    // alpha–beta and beta–gamma: no alpha–gamma link.
    await connect(alpha, beta)
    await connect(beta, gamma)

    // alpha creates a room and shares it with beta, which shares it with gamma.
    const room = await cli<{ id: string }>(alpha, 'room', 'create', 'general', '--topic', 'everything')
    const shared = await cli<{ peer: string }>(alpha, 'share', room.id, beta.did as string)
    assert.equal(shared.peer, beta.did)
    // room lifecycle (SPEC §9): beta's architect accepts the invitation
    await acceptRoom(cli, beta, room.id)
    const adopted = (m: Mesh) =>
      waitFor(async () => {
        const rooms = await cli<Array<{ id: string; federated: boolean }>>(m, 'rooms')
        return rooms.find((r) => r.id === room.id && r.federated)
      }, `${m.name} adopts the room`)
    await adopted(beta)
    const refused = await runMesh(['share', room.id, gamma.did as string, '--data', alpha.dir, '--json'], env)
    assert.equal(refused.code, 1)
    assert.match(refused.stdout, /MESH_NOT_CONNECTED/)
    await cli(beta, 'share', room.id, gamma.did as string)
    await acceptRoom(cli, gamma, room.id)
    await adopted(gamma)
    await waitFor(async () => {
      for (const m of meshes) {
        const members = await cli<unknown[]>(m, 'members', room.id).catch(() => [])
        if (members.length !== 3) return false
      }
      return true
    }, 'three members everywhere')

    // Messages both ways between alpha and beta, and from gamma (which reaches alpha through beta).
    await cli(alpha, 'post', room.id, 'hello from alpha')
    await cli(beta, 'post', room.id, 'hello from beta')
    await cli(gamma, 'post', room.id, 'hello from gamma')
    const three = await converged(room.id, 3, 'three messages everywhere, once')
    const fromGamma = three.find((m) => m.body === 'hello from gamma')
    assert.equal(fromGamma?.author, '@gamma-architect:gamma')
    const read = await cli<{ messages: Msg[] }>(alpha, 'messages', room.id, '--limit', '2')
    assert.equal(read.messages.length, 2)
    const next = await cli<{ messages: Msg[] }>(
      alpha,
      'messages',
      room.id,
      '--after',
      read.messages[1]?.id as string,
    )
    assert.equal(next.messages.length, 1)

    // gamma goes offline during 1,000 messages, then catches up from beta in chunks of at most 100.
    for (const m of [alpha, beta]) await cli(m, 'policy', '--max-backfill', '100')
    await gamma.proc?.stop('SIGTERM')
    for (let i = 0; i < 1000; i++)
      await api(i % 2 ? alpha : beta).post(`/api/rooms/${room.id}/messages`, { body: `offline ${i}` })
    await start(gamma)
    const caughtUp = await converged(room.id, 1003, 'gamma caught up with 1,003 messages', 120_000)
    assert.equal(new Set(caughtUp.map((m) => m.id)).size, 1003)
    const progress = await cli<RoomSyncStatus>(gamma, 'room', 'sync', room.id)
    const fromBeta = progress.peers.find((p) => p.peer === beta.did)
    assert.ok(fromBeta !== undefined)
    assert.ok(fromBeta.incoming.chunks >= 10, `chunks ${fromBeta.incoming.chunks}`)
    assert.equal(fromBeta.incoming.chunksDone, fromBeta.incoming.chunks)
    assert.ok(fromBeta.incoming.entries >= 1000)
    const human = await runMesh(['room', 'sync', room.id, '--data', gamma.dir], env)
    assert.match(human.stdout, /from peer: \d+\/\d+ entries/)

    // beta (the relay) is killed during a burst of posts to it; every acknowledged post survives everywhere.
    const acknowledged: string[] = []
    let killed = false
    const burst = (async () => {
      for (let i = 0; i < 400 && !killed; i++) {
        try {
          const res = await api(beta).post<{ id: string }>(`/api/rooms/${room.id}/messages`, {
            body: `burst ${i}`,
          })
          acknowledged.push(res.id)
        } catch {
          // the node is gone: not acknowledged
        }
      }
    })()
    await waitFor(() => acknowledged.length >= 100, 'burst under way')
    await beta.proc?.stop('SIGKILL')
    killed = true
    await burst
    await start(beta)
    const final = await converged(
      room.id,
      1003 + acknowledged.length,
      'every acknowledged post everywhere',
      120_000,
      true,
    )
    const ids = new Set(final.map((m) => m.id))
    for (const id of acknowledged) assert.ok(ids.has(id), `acknowledged ${id} missing`)

    // Notifications land on the mentioned user's home mesh.
    await cli(gamma, 'post', room.id, 'ping @alpha-architect:alpha')
    await waitFor(async () => {
      const notes = await cli<{ notifications: Array<{ body: string }> }>(alpha, 'notifications')
      return notes.notifications.some((n) => n.body.includes('ping'))
    }, 'mention notified at alpha')
  })
})
