/**
 * Issue 18, "Must show" (tasks), as separate processes and with the CLI as a person uses
 * it: a task created on alpha, assigned to `@carol:beta`, is announced to carol on her
 * home mesh, moved to done by carol on beta, and converges on both sides; what beta's
 * other member (mallory, a tier-4 participant at alpha) may not do is refused with
 * MESH_FORBIDDEN, and the room goes on (a sentinel after the attempts arrives).
 * Forged entries from a hostile peer: test/rooms/tasks-nodes.test.ts, test/rooms/tasks.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { waitFor } from '../../scripts/lib/processes.ts'
import type { TaskView } from '../../src/api/index.ts'
import { acceptRoom, connectionView, e2e, startCliMeshes } from '../fixtures/e2e.ts'

type Note = { body: string; room: string }

describe('tasks across meshes (SPEC §13), multi-process', () => {
  it('alpha’s task assigned to @carol:beta is done by carol on beta and converges; a non-assignee is refused', async (t) => {
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
    for (const name of ['carol', 'mallory']) {
      await cli(undefined, 'key', 'new', name)
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
  })
})
