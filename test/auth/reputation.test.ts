import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type * as API from '@ucanto/interface'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import type { InvokeResult } from '../../src/agents/index.ts'
import type { AuditPage } from '../../src/audit/index.ts'
import { agentResourceOf } from '../../src/auth/authority/index.ts'
import type { TrustView } from '../../src/auth/index.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import { HttpClient } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import type { MessageEntry } from '../../src/rooms/index.ts'
import { startNode, type TestNode } from '../connections/nodes.ts'
import { waitFor } from '../p2p/nodes.ts'
import { grant, rootOf } from './chain-acts.ts'

const THRESHOLD = 3

function echo(node: TestNode, signer: Ed25519KeyPair, input: unknown, proofs: API.Delegation[]) {
  return invocationToken(
    signer,
    node.node.did,
    { can: 'agent/invoke', with: agentResourceOf(node.node.did, 'echo'), nb: { ability: 'echo', input } },
    proofs,
  )
}

function post(node: TestNode, ucan: string): Promise<InvokeResult> {
  return new HttpClient(node.node.httpUrl).post<InvokeResult>('/api/invoke', { ucan })
}

const trustOf = (node: TestNode, did: string) => node.api.get<TrustView>(`/api/trust/${did}`)

/**
 * Refusals are recorded in order, one after another: once a refusal charged to a fresh
 * foreign principal shows, every refusal before it has been recorded (or was not charged).
 */
async function settled(node: TestNode): Promise<void> {
  const sentinel = Ed25519KeyPair.generate()
  await assert.rejects(post(node, await echo(node, sentinel, 'sentinel', [])))
  await waitFor(async () => (await trustOf(node, sentinel.did)).refused === 1, 'the sentinel refusal')
}

async function architectActs(node: TestNode, input: string): Promise<string> {
  const ucan = await echo(node, node.architect, input, [await rootOf(node)])
  const res = await post(node, ucan)
  assert.equal(res.invoker, node.architect.did)
  assert.equal(res.tier, 1)
  return ucan
}

describe('reputation follows proof', () => {
  it('a delegation the architect signed, posted again and again to /api/invoke, charges nobody — also after a restart', async (t) => {
    const a = await startNode(t, 'alpha', { authority: { violationThreshold: THRESHOLD } })
    const dave = Ed25519KeyPair.generate()
    // Held by dave, and by anyone dave ever showed a chain to.
    const toDave = await grant(a, dave.did, {
      can: 'agent/invoke',
      with: agentResourceOf(a.node.did, 'echo'),
      nb: { ability: 'echo' },
    })
    for (let i = 0; i < 2 * THRESHOLD; i++) {
      await assert.rejects(post(a, toDave.token), (err: { code: string }) => err.code === 'MESH_UCAN_INVALID')
    }
    // The architect's own spent invocation, reposted by whoever saw it: a replay, charged to nobody.
    const spent = await architectActs(a, 'first')
    for (let i = 0; i < 2 * THRESHOLD; i++) {
      await assert.rejects(post(a, spent), (err: { code: string }) => err.code === 'MESH_REPLAY')
    }
    await settled(a)
    const architect = await trustOf(a, a.architect.did)
    assert.equal(architect.tier, 1)
    assert.equal(architect.refused, 0, 'no refusal was charged to the architect')
    assert.equal(architect.flagged, undefined)
    await architectActs(a, 'still the architect')

    await a.restart()
    await assert.rejects(post(a, toDave.token))
    await assert.rejects(post(a, spent), (err: { code: string }) => err.code === 'MESH_REPLAY')
    await settled(a)
    assert.equal((await trustOf(a, a.architect.did)).tier, 1)
    await architectActs(a, 'and after a restart')
    const demotions = await a.api.get<AuditPage>('/api/audit?action=trust.demoted')
    assert.equal(demotions.entries.length, 0)
  })

  it('an invoker who signed bad invocations is still demoted; a reposted one is charged once', async (t) => {
    const a = await startNode(t, 'alpha', { authority: { violationThreshold: THRESHOLD } })
    const dave = Ed25519KeyPair.generate()
    const promote = await invocationToken(
      a.architect,
      a.node.did,
      { can: 'trust/promote', with: a.node.did, nb: { subject: dave.did, tier: 3, reason: 'runs our CI' } },
      [await rootOf(a)],
    )
    await a.api.put(`/api/trust/${dave.did}`, { tier: 3, reason: 'runs our CI', ucan: promote })

    // One bad invocation dave signed (no chain at all), posted over and over.
    const bad = await echo(a, dave, 'no chain', [])
    for (let i = 0; i < 2 * THRESHOLD; i++) {
      await assert.rejects(post(a, bad), (err: { code: string }) => err.code === 'MESH_UCAN_INVALID')
    }
    await settled(a)
    const once = await trustOf(a, dave.did)
    assert.deepEqual([once.tier, once.refused], [3, 1], 'charged once for one invocation')

    // Fresh bad invocations of dave's own: each one counts, and dave goes back to tier 4.
    for (let i = 1; i < THRESHOLD; i++) {
      await assert.rejects(post(a, await echo(a, dave, `no chain ${i}`, [])))
    }
    const demoted = await waitFor(async () => {
      const r = await trustOf(a, dave.did)
      return r.tier === 4 ? r : undefined
    }, 'dave demoted')
    assert.equal(demoted.tierReason, 'violations')
    const rows = await a.api.get<AuditPage>('/api/audit?action=trust.demoted')
    assert.ok(rows.entries.some((e) => e.subject === dave.did && e.details.automatic === true))
  })

  it('a local human at tier 1 whose own y-websocket writes are refused is flagged, not demoted', async (t) => {
    const a = await startNode(t, 'alpha', { authority: { violationThreshold: THRESHOLD } })
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'lobby' })
    const first = await a.api.post<{ id: string }>(`/api/rooms/${id}/messages`, { body: 'already here' })
    const doc = new Y.Doc()
    // A single-use ticket, never the session token, goes in the y-websocket URL.
    const { ticket } = await a.api.post<{ ticket: string }>(`/api/rooms/${id}/yjs-ticket`, {})
    const provider = new WebsocketProvider(`${a.node.httpUrl.replace(/^http/, 'ws')}/yjs`, id, doc, {
      params: { token: ticket },
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
    })
    t.after(() => {
      provider.destroy()
      doc.destroy()
    })
    await waitFor(() => provider.synced, 'sync')
    const messages = doc.getMap<MessageEntry>('messages')
    await waitFor(() => messages.has(first.id), 'the message at the client')

    // Rewriting one's own history is refused, write after write.
    for (let i = 0; i < THRESHOLD + 1; i++) {
      messages.set(first.id, { ...(messages.get(first.id) as MessageEntry), body: `rewritten ${i}` })
    }
    const flagged = await waitFor(async () => {
      const r = await trustOf(a, a.architect.did)
      return r.flagged !== undefined ? r : undefined
    }, 'the architect flagged')
    assert.equal(flagged.tier, 1)
    assert.ok(flagged.refused >= THRESHOLD)
    assert.match(flagged.flagged?.reason ?? '', /refusals/)
    const rows = await a.api.get<AuditPage>('/api/audit?action=trust.flagged')
    assert.ok(rows.entries.some((e) => e.subject === a.architect.did))
    assert.ok(a.lines.some((l) => l.event === 'trust.flagged' && l.did === a.architect.did))
    await architectActs(a, 'flagged, not locked out')
    assert.equal((await a.api.get<AuditPage>('/api/audit?action=trust.demoted')).entries.length, 0)
  })
})
