/**
 * Tasks across meshes (SPEC §13) between two real nodes over libp2p: a hostile beta (its
 * node holds beta's mesh key) writes forged status changes straight into its replica,
 * so its link carries them to alpha. Alpha refuses each one (logged in
 * /federation/rejected), the task keeps its state, and beta's next post (the sentinel)
 * arrives: the room and the link stay healthy.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import type { TaskView } from '../../src/api/index.ts'
import { MESH_KEY_FILE, readKeyFile } from '../../src/identity/index.ts'
import { contentId, type TaskEntry } from '../../src/rooms/index.ts'
import { twoNodesSharing, until } from './helpers.ts'
import { sealedTaskUpdate, statusEntry } from './task-helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }
const FORGER = 626_262 // the hostile process's Yjs client id
type RejectedEntry = { peer: string | null; code: string; details: Record<string, unknown> }

describe('forged task changes between two nodes', () => {
  it('a forged status change is refused at alpha; the sentinel after the attack arrives', async (t) => {
    const { a, b, id } = await twoNodesSharing(t, { rooms: ROOMS })
    const task = await a.api.post<TaskView>(`/api/rooms/${id}/tasks`, { title: 'Guarded' })
    // alpha's architect takes the task; beta's architect (a tier-4 participant) is not its assignee.
    await a.api.post(`/api/rooms/${id}/tasks/${task.id}/assign`, { assignee: a.architect.did })
    const roomB = await b.node.rooms.load(id)
    const basis = await until(
      () =>
        [...roomB.doc.getMap<TaskEntry>('tasks').entries()].find(
          ([, e]) => e.op === 'assign' && e.task === task.id,
        )?.[0],
      'the assignment at beta',
    )

    // The hostile beta: entries sealed by beta's own key, written past its rules.
    const betaKey = await readKeyFile(join(b.dataDir, MESH_KEY_FILE))
    const status = (author: string, authorMesh: string, extra: Record<string, unknown> = {}) =>
      statusEntry(id, task.id, author, authorMesh, extra)
    const forged = [
      status(b.architect.did, b.node.did, { basis }), // not the assignee
      status(a.architect.did, a.node.did), // alpha's architect, as beta writes it
    ]
    // Written by another client of beta's (a forger's process) and put straight into beta's replica.
    Y.applyUpdate(roomB.doc, sealedTaskUpdate(roomB.doc, id, FORGER, betaKey, forged))

    const rejected = async () =>
      (await a.api.get<{ entries: RejectedEntry[] }>('/api/federation/rejected?limit=200')).entries.filter(
        (e) => e.peer === b.node.did,
      )
    const refusal = await until(
      async () => (await rejected()).find((e) => e.code === 'MESH_UPDATE_REJECTED'),
      'alpha refuses the forged changes',
    )
    assert.ok(['task-rules', 'bad-seal'].includes(String(refusal.details.reason)), JSON.stringify(refusal))

    // Sentinel after the attack: beta's architect posts through beta; alpha takes it.
    const sentinel = await b.api.post<{ id: string }>(`/api/rooms/${id}/messages`, {
      body: 'sentinel after the attack',
    })
    await until(
      async () =>
        (
          await a.api.get<{ messages: Array<{ id: string }> }>(`/api/rooms/${id}/messages?limit=200`)
        ).messages.some((m) => m.id === sentinel.id),
      'the sentinel at alpha',
    )
    const atAlpha = await a.api.get<TaskView>(`/api/rooms/${id}/tasks/${task.id}`)
    assert.equal(atAlpha.status, 'open', 'no forged change took')
    for (const entry of forged)
      assert.equal(
        (await a.node.rooms.load(id)).doc.getMap('tasks').has(contentId(entry)),
        false,
        'alpha holds no forged entry',
      )
    // The real assignee still moves it, and beta sees that.
    await a.api.post(`/api/rooms/${id}/tasks/${task.id}/status`, { status: 'done' })
    await until(
      async () => (await b.api.get<TaskView>(`/api/rooms/${id}/tasks/${task.id}`)).status === 'done',
      'beta sees it done',
    )
  })
})
