/**
 * Issue 18, "Must show" (tasks), as separate processes and with the CLI as a person uses
 * it: a task created on alpha, assigned to `@carol:beta`, is announced to carol on her
 * home mesh, moved to done by carol on beta, and converges on both sides; what beta's
 * other member (mallory, a tier-4 participant at alpha) may not do is refused with
 * MESH_FORBIDDEN. Then beta turns hostile: forged status changes written into its own
 * store with its key (mallory's, not the assignee; one as alpha's) reach alpha when it
 * syncs, are refused and logged, and a sentinel posted after the attack arrives.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { waitFor } from '../../scripts/lib/processes.ts'
import type { TaskView } from '../../src/api/index.ts'
import { MESH_KEY_FILE, readKeyFile } from '../../src/identity/index.ts'
import { withMeshStore } from '../../src/mesh-info.ts'
import { RoomManager, type TaskEntry } from '../../src/rooms/index.ts'
import {
  acceptRoom,
  connectionView,
  e2e,
  fixedPortStart,
  rejectedAt,
  startCliMeshes,
} from '../fixtures/e2e.ts'
import { sealedTaskUpdate, statusEntry } from '../rooms/task-helpers.ts'

type Note = { body: string; room: string }

describe('tasks across meshes (SPEC §13), multi-process', () => {
  it('alpha’s task assigned to @carol:beta is done by carol on beta and converges; a non-assignee is refused; a forged status change is refused (sentinel after the attack)', async (t) => {
    const e = await e2e(t, 'mesh-tasks-e2e-', { logLevel: 'warn' })
    const { cli, run } = e
    const [alpha, beta] = await startCliMeshes(e, ['alpha', 'beta'])
    assert.ok(alpha && beta)

    // alpha ↔ beta; a room of alpha's shared with beta and accepted there.
    const c = await cli<{ id: string }>(alpha, 'connect', beta.proc?.listen[0] as string)
    await waitFor(async () => (await connectionView(beta, c.id)) !== undefined, 'the request reaches beta')
    await cli(beta, 'accept', c.id)
    await waitFor(async () => (await connectionView(alpha, c.id))?.status === 'accepted', 'accepted')
    const room = (await cli<{ id: string }>(alpha, 'room', 'create', 'work')).id
    await cli(alpha, 'share', room, beta.did as string)
    await acceptRoom(cli, beta, room)

    // beta enrols carol and mallory; both join the room through beta.
    const dids: Record<string, string> = {}
    for (const name of ['carol', 'mallory']) {
      dids[name] = (await cli<{ did: string }>(undefined, 'key', 'new', name)).did
      await cli(beta, 'member', 'add', name, '--kind', 'human', '--name', name)
      await waitFor(
        async () => (await run(beta, 'room', 'join', room, '--as', name)).code === 0,
        `${name} joins`,
      )
    }
    await waitFor(
      async () =>
        (await cli<Array<{ name: string }>>(alpha, 'members', room)).some((m) => m.name === '@carol:beta'),
      'alpha lists @carol:beta',
    )

    // alpha's architect creates the task and assigns it to @carol:beta.
    const created = await cli<TaskView>(alpha, 'task', 'add', room, 'Ship the release', '--due', '2027-01-31')
    const assigned = await cli<TaskView>(
      alpha,
      'task',
      'assign',
      room,
      created.id.slice(0, 10),
      '@carol:beta',
    )
    assert.equal(assigned.assignee?.name, '@carol:beta')
    assert.equal(assigned.status, 'open')

    // carol sees it on beta, assigned to her, and was notified there.
    await waitFor(async () => {
      const tasks = await cli<TaskView[]>(beta, 'task', 'list', room, '--as', 'carol')
      return tasks.find((x) => x.id === created.id)?.assignee?.name === '@carol'
    }, 'the task reaches beta, assigned to carol')
    const notes = await waitFor(
      async () =>
        (await cli<{ notifications: Note[] }>(beta, 'notifications', '--as', 'carol')).notifications.find(
          (n) => n.room === room && n.body.includes('Ship the release'),
        ),
      'carol is notified on beta',
    )
    assert.match(notes.body, /@carol:beta/)

    // mallory (no assignee, no moderator, a foreign participant at alpha) may neither move nor assign it.
    const moved = await run(beta, 'task', 'done', room, created.id, '--as', 'mallory')
    assert.equal(moved.code, 1)
    assert.equal(moved.out.error?.code, 'MESH_FORBIDDEN')
    assert.equal(moved.out.error?.details.reason, 'task-rules')
    const reassigned = await run(beta, 'task', 'assign', room, created.id, '@mallory', '--as', 'mallory')
    assert.equal(reassigned.out.error?.code, 'MESH_FORBIDDEN')

    // carol moves it to done on beta, and comments.
    const done = await cli<TaskView>(beta, 'task', 'done', room, created.id.slice(0, 10), '--as', 'carol')
    assert.equal(done.status, 'done')
    await cli(beta, 'task', 'comment', room, created.id, 'shipped', '--as', 'carol')
    // A sentinel after the refused attempts.
    await cli(beta, 'post', room, 'sentinel after the attempts', '--as', 'mallory')

    // A second task, assigned as it is made; carol moves it; its due date is cleared.
    const second = await cli<TaskView>(
      alpha,
      'task',
      'add',
      room,
      'Write notes',
      '--body',
      'for 1.0',
      '--assign',
      '@carol:beta',
    )
    assert.equal(second.assignee?.name, '@carol:beta')
    await waitFor(
      async () => (await run(beta, 'task', 'move', room, second.id, 'doing', '--as', 'carol')).code === 0,
      'carol moves the second task once it reaches beta',
    )
    await cli(alpha, 'task', 'due', room, second.id, '2027-02-01')
    await cli(alpha, 'task', 'due', room, second.id, 'none')
    await waitFor(async () => {
      const doing = await cli<TaskView[]>(alpha, 'task', 'list', room, '--status', 'doing')
      return doing.length === 1 && doing[0]?.id === second.id && doing[0].due === null
    }, 'alpha lists the second task as doing, with no due date')

    // Converged: the same task on both sides (names as each mesh shows them).
    const atAlpha = await waitFor(async () => {
      const x = await cli<TaskView>(alpha, 'task', 'show', room, created.id)
      return x.status === 'done' && x.comments.length === 1 ? x : undefined
    }, 'alpha sees it done, with carol’s comment')
    const atBeta = await cli<TaskView>(beta, 'task', 'show', room, created.id, '--as', 'carol')
    const plain = (x: TaskView) => ({
      id: x.id,
      title: x.title,
      status: x.status,
      due: x.due,
      assignee: x.assignee?.did,
      createdBy: x.createdBy.did,
      updatedAt: x.updatedAt,
      comments: x.comments.map((cm) => [cm.id, cm.author.did, cm.body]),
    })
    assert.deepEqual(plain(atAlpha), plain(atBeta))
    assert.equal(atAlpha.assignee?.name, '@carol:beta')
    assert.equal(atAlpha.due, Date.parse('2027-01-31'))
    assert.deepEqual(
      atAlpha.comments.map((cm) => [cm.author.name, cm.body]),
      [['@carol:beta', 'shipped']],
    )
    await waitFor(
      async () =>
        (
          await cli<{ messages: Array<{ body: string }> }>(alpha, 'messages', room, '--limit', '200')
        ).messages.some((m) => m.body === 'sentinel after the attempts'),
      'the sentinel reaches alpha',
    )

    // The attack: beta turns hostile. While it is stopped, a forger holding beta's key writes
    // into beta's own store what beta's rules would never let through — mallory cancelling
    // carol's task, and beta writing as alpha's architect — then beta comes back and syncs.
    const betaHttp = new URL(beta.proc?.http as string)
    const betaP2p = Number(String(beta.proc?.listen[0]).split('/')[4])
    await beta.proc?.stop('SIGTERM')
    const basis = await withMeshStore(beta.dir, async (store) => {
      const key = await readKeyFile(join(beta.dir, MESH_KEY_FILE))
      const rooms = new RoomManager({
        store,
        key: () => key,
        meshName: 'beta',
        localPrincipal: async () => undefined,
      })
      await rooms.start()
      try {
        const replica = await rooms.load(room)
        const assignment = [...replica.doc.getMap<TaskEntry>('tasks').entries()].find(
          ([, x]) => x.op === 'assign' && x.task === created.id,
        )?.[0]
        const forged = [
          statusEntry(room, created.id, dids.mallory as string, beta.did as string, {
            status: 'cancelled',
            basis: assignment,
          }),
          statusEntry(room, created.id, alpha.did as string, alpha.did as string, { status: 'cancelled' }),
        ]
        Y.applyUpdate(replica.doc, sealedTaskUpdate(replica.doc, room, 737_373, key, forged))
        await replica.flush()
        return assignment
      } finally {
        await rooms.stop()
      }
    })
    assert.ok(basis, 'carol’s assignment at beta')
    beta.proc = await e.start(
      fixedPortStart({ dir: beta.dir, httpPort: Number(betaHttp.port), p2pPort: betaP2p }),
    )
    const refusal = await rejectedAt(
      alpha,
      (x) => x.peer === beta.did && ['task-rules', 'bad-seal'].includes(String(x.details.reason)),
      'alpha refuses beta’s forged task changes',
    )
    assert.equal(refusal.code, 'MESH_UPDATE_REJECTED')
    // Sentinel after the attack: carol posts through beta; alpha takes it; the task stands.
    await cli(beta, 'post', room, 'sentinel after the attack', '--as', 'carol')
    await waitFor(
      async () =>
        (
          await cli<{ messages: Array<{ body: string }> }>(alpha, 'messages', room, '--limit', '200')
        ).messages.some((m) => m.body === 'sentinel after the attack'),
      'the sentinel after the attack reaches alpha',
    )
    assert.equal((await cli<TaskView>(alpha, 'task', 'show', room, created.id)).status, 'done')
  })
})
