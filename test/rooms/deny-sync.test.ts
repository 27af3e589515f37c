/**
 * A mesh on the deny list syncs no room (SPEC §11: an offender is denied until a human
 * decides; a human's deny too): its room links close at once and nothing it writes
 * arrives; taken off the list, its link reopens and catches up. Two real nodes.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { twoNodesSharing, until } from './helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }
type Msg = { id: string; body: string }

describe('rooms and the deny list', () => {
  it('a denied peer’s room links close and its writes stay out; undenied, it catches up', async (t) => {
    const { a, b, id } = await twoNodesSharing(t, { rooms: ROOMS })
    const bodies = async () =>
      (await a.api.get<{ messages: Msg[] }>(`/api/rooms/${id}/messages?limit=200`)).messages.map(
        (m) => m.body,
      )
    await b.api.post(`/api/rooms/${id}/messages`, { body: 'before the deny' })
    await until(async () => (await bodies()).includes('before the deny'), 'beta’s post at alpha')

    await a.api.request('PATCH', '/api/federation/policy', { deny: [b.node.did] })
    await until(() => !a.node.roomSync.links().includes(b.node.did), 'alpha closes its link to beta')
    await b.api.post(`/api/rooms/${id}/messages`, { body: 'while denied' })
    // beta keeps trying (its own sync interval); alpha refuses: wait for refusals, not for time.
    await until(
      async () =>
        (
          await a.api.get<{ entries: Array<{ peer: string | null }> }>('/api/federation/rejected?limit=200')
        ).entries.some((e) => e.peer === b.node.did),
      'alpha refuses beta’s link',
    )
    assert.ok(!(await bodies()).includes('while denied'))
    assert.ok(!a.node.roomSync.links().includes(b.node.did))

    await a.api.request('PATCH', '/api/federation/policy', { deny: [] })
    await until(async () => (await bodies()).includes('while denied'), 'beta’s post arrives once undenied')
  })
})
