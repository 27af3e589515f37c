/**
 * Phase-1 HTTP federation (SPEC §12), across processes: our mesh (`mesh start`) and a
 * stand-alone phase-1 peer (test/fixtures/phase1-peer.ts: plain HTTP, its own Ed25519
 * keys, no libp2p) written from the README text alone. The peer requests; our architect
 * accepts with the CLI (the accept goes back over HTTP); a room is shared with it; it
 * posts into the room and reads our replies.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { describe, it, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { waitFor } from '../../scripts/lib/processes.ts'
import { roomResourceOf } from '../../src/auth/authority/index.ts'
import { actCapability, invocationToken, proofOf } from '../../src/cli/chains.ts'
import type { ConnectionView } from '../../src/connections/index.ts'
import { e2e, FAST_RETRY, freePort } from '../fixtures/e2e.ts'

const PEER = fileURLToPath(new URL('../fixtures/phase1-peer.ts', import.meta.url))

type Line = { id?: number; ok?: unknown; error?: unknown; event?: string; [field: string]: unknown }

async function startPeer(t: TestContext, node: string) {
  const proc: ChildProcess = spawn(process.execPath, [PEER, '--node', node], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stderr = ''
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const exited = once(proc, 'exit')
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL')
      await exited
    }
  })
  const lines: Line[] = []
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    lines.push(JSON.parse(line) as Line)
  })
  const event = (match: (l: Line) => boolean, what: string, ms = 60_000) =>
    waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error(`the peer exited before ${what}: ${stderr}`)
        return lines.find(match)
      },
      what,
      ms,
    )
  let next = 0
  const ask = async <T>(op: string, fields: Record<string, unknown> = {}): Promise<T> => {
    const id = ++next
    proc.stdin?.write(`${JSON.stringify({ id, op, ...fields })}\n`)
    const reply = await event((l) => l.id === id, `the peer's answer to ${op}`)
    if (reply.error !== undefined) throw new Error(JSON.stringify(reply.error))
    return reply.ok as T
  }
  const ready = await event((l) => l.event === 'ready', 'the peer ready')
  return { did: String(ready.did), http: String(ready.http), ask, event }
}

describe('phase-1 HTTP federation: a stand-alone phase-1 peer (SPEC §12)', () => {
  it('requests, is accepted by our architect (CLI), posts into a shared room and reads our replies', async (t) => {
    const e = await e2e(t, 'mesh-phase1-')
    const dir = await e.init('alpha')
    const proc = await e.start([
      'start',
      ...['--data', dir, '--http', `127.0.0.1:${await freePort()}`],
      ...['--listen', `/ip4/127.0.0.1/tcp/${await freePort()}`],
      ...['--discovery-interval', '60000', ...FAST_RETRY, '--probe-interval', '0', '--sync-interval', '300'],
    ])
    const api = await e.signInArchitect(proc.http, 'alpha')
    const alpha = { dir }
    const peer = await startPeer(t, proc.http)

    // The peer requests over POST /connections/request: pending here.
    const requested = await peer.ask<{ type: string; body: { status: string; connectionId: string } }>(
      'request',
    )
    assert.equal(requested.type, 'connect.ack')
    assert.equal(requested.body.status, 'pending')
    const id = requested.body.connectionId
    const requests = await e.cli<ConnectionView[]>(alpha, 'requests')
    assert.deepEqual(
      requests.map((r) => [r.id, r.peerDid, r.status]),
      [[id, peer.did, 'pending']],
    )

    // Our architect accepts with the CLI; the accept reaches the peer's /connections/accepted.
    await e.cli(alpha, 'accept', id)
    await peer.event((l) => l.event === 'received' && l.type === 'connect.accept', 'the accept at the peer')
    await waitFor(
      async () =>
        (await api.get<ConnectionView[]>('/api/connections')).find((c) => c.id === id)?.status === 'accepted',
      'accepted here',
    )

    // A room of ours, shared with the peer mesh (the architect's room/share act).
    const { id: room } = await api.post<{ id: string }>('/api/rooms', { name: 'with phase one' })
    await api.post(`/api/rooms/${room}/messages`, { body: 'hello phase one' })
    const architect = await e.keystore.load('alpha-architect')
    const root = await api.get<{ token: string }>('/api/auth/root-delegation')
    const ucan = await invocationToken(
      architect,
      proc.did as string,
      {
        ...actCapability(proc.did as string, 'room/share', peer.did),
        with: roomResourceOf(proc.did as string, room),
      },
      [proofOf(root.token)],
    )
    await api.post(`/api/rooms/${room}/share`, { mesh: peer.did, ucan })

    // The peer polls: takes the invitation (accepts it), catches up, posts; we reply; it reads the reply.
    const synced = await peer.ask<{ caughtUp: boolean; messages: string[] }>('sync', { room })
    assert.equal(synced.caughtUp, true)
    assert.deepEqual(synced.messages, ['hello phase one'])
    const posted = await peer.ask<{ refused: unknown[] }>('post', { room, body: 'hello from phase one' })
    assert.deepEqual(posted.refused, [])
    const bodies = async () =>
      (
        await api.get<{ messages: Array<{ body: string }> }>(`/api/rooms/${room}/messages?limit=50`)
      ).messages.map((m) => m.body)
    await waitFor(async () => (await bodies()).includes('hello from phase one'), 'the peer’s message here')
    await api.post(`/api/rooms/${room}/messages`, { body: 'our reply' })
    const read = await waitFor(async () => {
      const r = await peer.ask<{ messages: string[] }>('sync', { room })
      return r.messages.includes('our reply') ? r : undefined
    }, 'our reply at the peer')
    assert.deepEqual(read.messages, ['hello from phase one', 'hello phase one', 'our reply'])
  })
})
