/**
 * Issue 12, Must show line 2, across processes: a foreign agent with a chain posts to and
 * reads one room through `/api/invoke` and through a capability session over
 * y-websocket; without a chain, with an expired or widened one, or on another room it
 * gets MESH_UCAN_INVALID / MESH_FORBIDDEN (a socket on another room closes 4403), and
 * after its chain ends its session is refused. Alpha runs as its own process (`mesh
 * start`); the agent is another (test/fixtures/foreign-agent.ts) with its own key, that
 * speaks only alpha's public HTTP API and the stock y-websocket provider.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { describe, it, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { waitFor } from '../../scripts/lib/processes.ts'
import { encodeToken } from '../../src/api/ucan.ts'
import { issueDelegation, roomResourceOf } from '../../src/auth/authority/index.ts'
import { proofOf } from '../../src/cli/chains.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { type CliMesh, e2e, startCliMeshes } from '../fixtures/e2e.ts'

const AGENT = fileURLToPath(new URL('../fixtures/foreign-agent.ts', import.meta.url))

type Refusal = { code: string; message: string; details: Record<string, unknown> }
type Reply = { id?: number; ok?: unknown; error?: Refusal; event?: string; [field: string]: unknown }
type Page = { messages: Array<{ id: string; body: string; authorDid: string; author: string }> }

/** The foreign agent's process: `ask` sends one command and resolves with its answer; `event` waits for a line. */
async function startForeignAgent(t: TestContext, node: string) {
  const proc: ChildProcess = spawn(process.execPath, [AGENT, '--node', node], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stderr = ''
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = once(proc, 'exit')
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL')
      await exited
    }
  })
  const lines: Reply[] = []
  const waiters = new Set<() => void>()
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    lines.push(JSON.parse(line) as Reply)
    for (const w of waiters) w()
  })
  proc.once('exit', () => {
    for (const w of waiters) w()
  })
  /** The first line, printed or to come, that `match`es; rejects after `ms` or when the agent exits first. */
  const event = (match: (r: Reply) => boolean, what: string, ms = 30_000): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = lines.find(match)
        if (found !== undefined) done(() => resolve(found))
        else if (proc.exitCode !== null || proc.signalCode !== null)
          done(() => reject(new Error(`the agent exited before ${what}: ${stderr}`)))
      }
      const timer = setTimeout(() => done(() => reject(new Error(`timed out waiting for ${what}`))), ms)
      const done = (then: () => void) => {
        clearTimeout(timer)
        waiters.delete(check)
        then()
      }
      waiters.add(check)
      check()
    })
  let next = 0
  /** The answer to one command: its `ok`, or throws its refusal. */
  const ask = async <T>(op: string, fields: Record<string, unknown> = {}, ms = 30_000): Promise<T> => {
    const id = ++next
    proc.stdin?.write(`${JSON.stringify({ id, op, ...fields })}\n`)
    const reply = await event((r) => r.id === id, `the agent's answer to ${op}`, ms)
    if (reply.error !== undefined) throw reply.error
    return reply.ok as T
  }
  const ready = await event((r) => r.event === 'ready', 'the agent ready')
  return { did: ready.did as string, ask, event, proc }
}

const refused = (code: string, reason?: string) => (err: Refusal) => {
  assert.equal(err.code, code, JSON.stringify(err))
  if (reason !== undefined) assert.equal(err.details.reason, reason, JSON.stringify(err))
  return true
}

/** Alpha's architect's delegation of `cans` on `room` to `audience` (proved by alpha's root delegation), as a token. */
async function chainToken(
  api: HttpClient,
  architect: Ed25519KeyPair,
  meshDid: string,
  audience: string,
  room: string,
  cans: string[],
  ttlSeconds: number,
): Promise<{ token: string; expiration: number }> {
  const root = await api.get<{ token: string }>('/api/auth/root-delegation')
  const expiration = Math.floor(Date.now() / 1000) + ttlSeconds
  const delegation = await issueDelegation({
    issuer: architect,
    audience,
    capabilities: cans.map((can) => ({ can, with: roomResourceOf(meshDid, room) })),
    expiration,
    proofs: [proofOf(root.token)],
  })
  return { token: await encodeToken(delegation), expiration }
}

describe('a foreign agent under a chain, across processes (issue 12, Must show 2)', () => {
  it('posts and reads through /api/invoke and a capability session over y-websocket; refused without, past or beyond its chain', async (t) => {
    const e = await e2e(t, 'mesh-foreign-agent-e2e-')
    const [alpha] = (await startCliMeshes(e, ['alpha'])) as [CliMesh]
    const api = alpha.api as HttpClient
    const meshDid = alpha.did as string
    const architect = await e.keystore.load('alpha-architect')
    const { id: room } = await api.post<{ id: string }>('/api/rooms', { name: 'general' })
    const { id: other } = await api.post<{ id: string }>('/api/rooms', { name: 'other' })
    await api.post(`/api/rooms/${room}/messages`, { body: 'welcome' })

    const agent = await startForeignAgent(t, alpha.proc?.http as string)
    const chain = (cans: string[], ttlSeconds = 3600, on = room) =>
      chainToken(api, architect, meshDid, agent.did, on, cans, ttlSeconds)
    const good = await chain(['room/read', 'room/post'])
    const proofs = [good.token]

    // Through POST /api/invoke: a post, then a read that shows it.
    const posted = await agent.ask<{ room: string; tier: number; result: { id: string } }>('invoke', {
      can: 'room/post',
      room,
      nb: { body: 'hello from afar' },
      proofs,
    })
    assert.deepEqual([posted.room, posted.tier], [room, 4])
    const read = await agent.ask<{ result: Page }>('invoke', { can: 'room/read', room, nb: {}, proofs })
    assert.deepEqual(
      read.result.messages.map((m) => m.body),
      ['welcome', 'hello from afar'],
    )
    assert.equal(read.result.messages[1]?.authorDid, agent.did)

    // Refused: no chain, an expired one, a widened one (read-only used to post), another room.
    await assert.rejects(
      agent.ask('invoke', { can: 'room/post', room, nb: { body: 'x' }, proofs: [] }),
      refused('MESH_UCAN_INVALID'),
    )
    const expired = await chain(['room/read', 'room/post'], -300)
    await assert.rejects(
      agent.ask('invoke', { can: 'room/post', room, nb: { body: 'x' }, proofs: [expired.token] }),
      refused('MESH_UCAN_INVALID', 'expired'),
    )
    const readOnly = await chain(['room/read'])
    await assert.rejects(
      agent.ask('invoke', { can: 'room/post', room, nb: { body: 'x' }, proofs: [readOnly.token] }),
      refused('MESH_FORBIDDEN'),
    )
    await assert.rejects(
      agent.ask('invoke', { can: 'room/post', room: other, nb: { body: 'x' }, proofs }),
      refused('MESH_FORBIDDEN'),
    )
    await assert.rejects(
      agent.ask('invoke', { can: 'room/read', room: other, nb: {}, proofs }),
      refused('MESH_FORBIDDEN'),
    )
    // The same refusals for a capability session.
    await assert.rejects(
      agent.ask('session', { name: 'none', can: 'room/post', room, proofs: [] }),
      refused('MESH_UCAN_INVALID'),
    )
    await assert.rejects(
      agent.ask('session', { name: 'past', can: 'room/post', room, proofs: [expired.token] }),
      refused('MESH_UCAN_INVALID', 'expired'),
    )
    await assert.rejects(
      agent.ask('session', { name: 'elsewhere', can: 'room/read', room: other, proofs }),
      refused('MESH_FORBIDDEN'),
    )

    // A capability session: reads its room, writes through y-websocket, alpha shows it.
    const session = await agent.ask<{ room: string; can: string[]; expiresAt: string }>('session', {
      name: 's',
      can: 'room/post',
      room,
      proofs,
    })
    assert.equal(session.room, room)
    assert.deepEqual(session.can, ['room/read', 'room/post'])
    const byRead = await agent.ask<Page>('read', { session: 's' })
    assert.ok(byRead.messages.some((m) => m.body === 'hello from afar'))
    assert.deepEqual(await agent.ask('socket', { session: 's', name: 'main' }), { synced: true })
    assert.ok((await agent.ask<string[]>('bodies', { socket: 'main' })).includes('hello from afar'))
    await agent.ask('write', { socket: 'main', body: 'over the socket' })
    await waitFor(
      async () =>
        (await api.get<Page>(`/api/rooms/${room}/messages`)).messages.some(
          (m) => m.body === 'over the socket' && m.authorDid === agent.did,
        ),
      "alpha's messages show the socket write",
      30_000,
    )
    // Another room: no ticket for it, and a socket there with this room's ticket closes 4403.
    await assert.rejects(
      agent.ask('ticket', { session: 's', room: other }),
      refused('MESH_FORBIDDEN', 'room'),
    )
    assert.deepEqual(await agent.ask('socket', { session: 's', name: 'wrong', room: other }), {
      closed: 4403,
    })

    // A chain that ends soon: its session works, then is refused once the chain has ended,
    // its live socket is closed, and no new session opens under it.
    const brief = await chain(['room/read', 'room/post'], 20)
    const briefSession = await agent.ask<{ expiresAt: string }>('session', {
      name: 'brief',
      can: 'room/read',
      room,
      proofs: [brief.token],
    })
    assert.ok(Date.parse(briefSession.expiresAt) <= brief.expiration * 1000)
    await agent.ask('read', { session: 'brief' })
    assert.deepEqual(await agent.ask('socket', { session: 'brief', name: 'brief' }), { synced: true })
    const closed = await agent.event(
      (r) => r.event === 'closed' && r.socket === 'brief',
      'the socket closed when its session ended',
      60_000,
    )
    assert.equal(closed.code, 4401)
    await assert.rejects(agent.ask('read', { session: 'brief' }), refused('MESH_UNAUTHENTICATED'))
    await assert.rejects(
      agent.ask('session', { name: 'after', can: 'room/read', room, proofs: [brief.token] }),
      refused('MESH_UCAN_INVALID', 'expired'),
    )
    // The long session is untouched (the sentinel), and only what was accepted landed.
    await agent.ask('write', { socket: 'main', body: 'sentinel' })
    await waitFor(
      async () =>
        (await api.get<Page>(`/api/rooms/${room}/messages`)).messages.some((m) => m.body === 'sentinel'),
      'the sentinel landed',
      30_000,
    )
    const page = await api.get<Page>(`/api/rooms/${room}/messages`)
    assert.deepEqual(
      page.messages.map((m) => m.body),
      ['welcome', 'hello from afar', 'over the socket', 'sentinel'],
    )
    assert.equal((await api.get<Page>(`/api/rooms/${other}/messages`)).messages.length, 0)
    agent.proc.kill('SIGTERM')
  })
})
