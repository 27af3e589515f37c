/**
 * Tasks across meshes (SPEC §13, issue 18): task entries in a shared room, written at
 * either mesh, checked by the room rules on every replica, folded to the same state.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  contentId,
  type MessageEntry,
  type Room,
  type RoomManager,
  refusalOf,
  type TaskEntry,
  TaskWriter,
} from '../../src/rooms/index.ts'
import { foldTasks } from '../../src/rooms/task-board.ts'
import { isTaskEntry } from '../../src/rooms/task-entries.ts'
import { alice, bob, carol, mallory, meshA, meshB, meshC, sharedRoom, sync } from './helpers.ts'
import { sealedTaskUpdate, statusEntry } from './task-helpers.ts'

const WRITER = 515_151 // writers of beta's (a hostile process holding beta's key, say), one per attack

function writerOf(rooms: RoomManager, now: () => number = Date.now): TaskWriter {
  return new TaskWriter({
    access: (room, did) => rooms.access(room, did),
    post: (room, did, body) => rooms.post(room, did, body),
    ownMesh: rooms.ownMesh,
    now,
  })
}

async function world(t: TestContext) {
  const refusals: string[] = []
  const w = await sharedRoom(t, { a: { onRejected: (r) => refusals.push(String(r.error.details.reason)) } })
  // alpha learns of beta's members (carol, mallory).
  assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
  return { ...w, refusals, tasksA: writerOf(w.a), tasksB: writerOf(w.b) }
}

/** Both ways, until neither replica has anything the other lacks. */
async function converge(a: Room, b: Room): Promise<void> {
  const r1 = await sync(a, b, meshA.did)
  assert.ok(r1.ok, r1.error?.message ?? '')
  const r2 = await sync(b, a, meshB.did)
  assert.ok(r2.ok, r2.error?.message ?? '')
}

const stateOf = (room: Room) => [...foldTasks(room.id, room.doc, (did) => did).values()]

let writers = 0
/** An update of `entries` sealed by `seal` (default: `key`), written by a fresh client of `key`'s mesh. */
function crafted(room: Room, key: Ed25519KeyPair, entries: TaskEntry[], seal: Ed25519KeyPair = key) {
  return { update: sealedTaskUpdate(room.doc, room.id, WRITER + writers++, key, entries, seal) }
}

async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call
    return 'ok'
  } catch (err) {
    const e = err as { code?: string; details?: { reason?: string } }
    return `${e.code} ${e.details?.reason ?? ''}`.trim()
  }
}

describe('tasks across meshes', () => {
  it('a task made at alpha, assigned to @carol:beta, moved to done by carol at beta, converges; carol is notified at beta', async (t) => {
    const w = await world(t)
    const task = await w.tasksA.create(w.id, alice.did, {
      title: 'Ship the release',
      due: Date.now() + 86_400_000,
    })
    assert.equal(task.status, 'open')
    const assigned = await w.tasksA.assign(w.id, alice.did, task.id, '@carol:beta')
    assert.equal(assigned.assignee?.did, carol.did)
    assert.equal(assigned.assignee?.name, '@carol:beta')
    await converge(w.roomA, w.roomB)
    const atBeta = await w.tasksB.get(w.id, carol.did, task.id)
    assert.equal(atBeta.assignee?.name, '@carol', 'beta shows its own member by local name')
    // Carol is told on her home mesh.
    const notes = await w.b.notifications(carol.did)
    assert.ok(
      notes.notifications.some((n) => n.body.includes('Ship the release')),
      'carol is notified at beta',
    )
    const done = await w.tasksB.setStatus(w.id, carol.did, task.id, 'done')
    assert.equal(done.status, 'done')
    await converge(w.roomB, w.roomA)
    assert.equal((await w.tasksA.get(w.id, alice.did, task.id)).status, 'done')
    assert.deepEqual(stateOf(w.roomA), stateOf(w.roomB), 'both replicas fold to the same tasks')
    await w.tasksB.comment(w.id, carol.did, task.id, 'shipped')
    await converge(w.roomB, w.roomA)
    assert.deepEqual(
      (await w.tasksA.get(w.id, alice.did, task.id)).comments.map((c) => [c.author.name, c.body]),
      [['@carol:beta', 'shipped']],
    )
    assert.deepEqual(w.refusals, [])
  })

  it('who may assign and move: a foreign participant does not assign; only the assignee or a moderator moves', async (t) => {
    const w = await world(t)
    const task = await w.tasksA.create(w.id, bob.did, { title: 'Write the docs' })
    await converge(w.roomA, w.roomB)
    // A tier-4 participant from beta creates and comments, but does not assign.
    assert.equal(
      await codeOf(w.tasksB.assign(w.id, mallory.did, task.id, '@carol')),
      'MESH_FORBIDDEN task-rules',
    )
    assert.equal(await codeOf(w.tasksB.create(w.id, mallory.did, { title: 'mine' })), 'ok')
    // bob (a member of the home mesh) assigns carol; mallory and bob may not move it, carol may.
    await w.tasksA.assign(w.id, bob.did, task.id, `${carol.did}`)
    await converge(w.roomA, w.roomB)
    assert.equal(
      await codeOf(w.tasksB.setStatus(w.id, mallory.did, task.id, 'done')),
      'MESH_FORBIDDEN task-rules',
    )
    assert.equal(
      await codeOf(w.tasksA.setStatus(w.id, bob.did, task.id, 'done')),
      'MESH_FORBIDDEN task-rules',
    )
    assert.equal(await codeOf(w.tasksB.setStatus(w.id, carol.did, task.id, 'doing')), 'ok')
    // alice sees carol's move before her own, so hers is dated after it: two moves made
    // unseen in the same millisecond would be ordered by their keys (the same everywhere,
    // but not the order this test states).
    await converge(w.roomB, w.roomA)
    // alice, the room's owner, moves it without being its assignee.
    assert.equal(await codeOf(w.tasksA.setStatus(w.id, alice.did, task.id, 'cancelled')), 'ok')
    // Unknown names, tasks and statuses.
    assert.equal(await codeOf(w.tasksA.assign(w.id, alice.did, task.id, '@nobody:beta')), 'MESH_NOT_FOUND')
    assert.equal(await codeOf(w.tasksA.setStatus(w.id, alice.did, 'x'.repeat(43), 'done')), 'MESH_NOT_FOUND')
    assert.equal(
      await codeOf(w.tasksA.setStatus(w.id, alice.did, task.id, 'finished' as 'done')),
      'MESH_BAD_REQUEST',
    )
    assert.equal(
      await codeOf(w.tasksA.create(w.id, alice.did, { title: 'x'.repeat(300) })),
      'MESH_BAD_REQUEST',
    )
    await converge(w.roomB, w.roomA)
    assert.deepEqual(stateOf(w.roomA), stateOf(w.roomB))
    assert.equal((await w.tasksA.get(w.id, alice.did, task.id)).status, 'cancelled')
  })

  it('a forged status change is refused at alpha (not the assignee, wrong author, bad seal); the room stays healthy', async (t) => {
    const w = await world(t)
    const task = await w.tasksA.create(w.id, alice.did, { title: 'Guard the gate' })
    await w.tasksA.assign(w.id, alice.did, task.id, '@carol:beta')
    await converge(w.roomA, w.roomB)
    const basis = [...w.roomA.doc.getMap<TaskEntry>('tasks').entries()].find(
      ([, e]) => e.op === 'assign',
    )?.[0]
    assert.ok(basis)
    const status = (author: string, authorMesh: string, extra: Record<string, unknown> = {}) =>
      statusEntry(w.id, task.id, author, authorMesh, extra)
    const attacks: Array<[string, Uint8Array, string]> = [
      // mallory (a member at beta) names carol's assignment: she is not the assignee.
      [
        'not the assignee',
        crafted(w.roomB, meshB, [status(mallory.did, meshB.did, { basis })]).update,
        'task-rules',
      ],
      // beta writes as alice of alpha: sealed by the wrong mesh.
      ['wrong author', crafted(w.roomB, meshB, [status(alice.did, meshA.did)]).update, 'bad-seal'],
      // carol's change, sealed by a key that is not beta's.
      [
        'bad seal',
        crafted(w.roomB, meshB, [status(carol.did, meshB.did, { basis })], meshC).update,
        'bad-seal',
      ],
      // a status change of a task that is not in the room.
      [
        'unknown task',
        crafted(w.roomB, meshB, [status(carol.did, meshB.did, { task: contentId('nothing'), basis })]).update,
        'unknown-task',
      ],
    ]
    for (const [what, update, reason] of attacks) {
      const result = await w.roomA.applyUpdate(update, { kind: 'peer', meshDid: meshB.did })
      assert.equal(refusalOf(result)?.details.reason, reason, what)
    }
    assert.equal((await w.tasksA.get(w.id, alice.did, task.id)).status, 'open', 'no forged change took')
    // Sentinel after the attack: beta's next writes (a message, carol's real change) arrive.
    await w.b.post(w.id, carol.did, 'sentinel after the attack')
    await w.tasksB.setStatus(w.id, carol.did, task.id, 'doing')
    await converge(w.roomB, w.roomA)
    assert.ok(
      [...w.roomA.doc.getMap<MessageEntry>('messages').values()].some(
        (m) => m.body === 'sentinel after the attack',
      ),
    )
    assert.equal((await w.tasksA.get(w.id, alice.did, task.id)).status, 'doing')
    assert.deepEqual(stateOf(w.roomA), stateOf(w.roomB))
    assert.ok(w.refusals.includes('task-rules') && w.refusals.includes('bad-seal'), w.refusals.join())
  })

  it('an assignee’s change made before a reassignment counts only while its assignment stands', async (t) => {
    let clock = Date.now()
    const now = () => clock
    const w = await world(t)
    const tasksA = writerOf(w.a, now)
    const tasksB = writerOf(w.b, now)
    const task = await tasksA.create(w.id, alice.did, { title: 'Reassigned' })
    await tasksA.assign(w.id, alice.did, task.id, '@carol:beta')
    await converge(w.roomA, w.roomB)
    clock += 10
    // Concurrently: alpha reassigns to bob, carol (still assigned at beta) marks it done.
    await tasksA.assign(w.id, alice.did, task.id, '@bob')
    await tasksB.setStatus(w.id, carol.did, task.id, 'done')
    await converge(w.roomA, w.roomB)
    const [a] = stateOf(w.roomA)
    const [b] = stateOf(w.roomB)
    assert.deepEqual(a, b, 'the same fold on both replicas')
    assert.equal(a?.assignee?.did, bob.did)
  })

  it('changes of one task made in the same turn are dated one after the other: the later call wins', async (t) => {
    const w = await world(t)
    const frozen = Date.now()
    const tasks = writerOf(w.a, () => frozen) // one millisecond for every write
    const task = await tasks.create(w.id, alice.did, { title: 'ship it' })
    // Both are queued for the end of the turn before either reaches the room (issue 15, batch15).
    await Promise.all([
      tasks.setStatus(w.id, alice.did, task.id, 'doing'),
      tasks.setStatus(w.id, alice.did, task.id, 'done'),
    ])
    const dates = [...w.roomA.doc.getMap<TaskEntry>('tasks').values()]
      .filter((e) => e.op === 'status')
      .map((e) => e.ts)
    assert.equal(new Set(dates).size, 2, 'two status changes, two dates')
    assert.equal((await tasks.get(w.id, alice.did, task.id)).status, 'done')
  })

  it('task entries of the wrong shape are refused', () => {
    const base = { v: 1, room: 'r0000000', author: alice.did, authorMesh: meshA.did, ts: 1 }
    assert.ok(isTaskEntry({ ...base, op: 'create', title: 'ok' }))
    for (const bad of [
      { ...base, op: 'create', title: '' },
      { ...base, op: 'create', title: 'x'.repeat(257) },
      { ...base, op: 'create', title: 'ok', extra: 1 },
      { ...base, op: 'delete', task: contentId(1) },
      { ...base, op: 'status', task: contentId(1), status: 'finished' },
      { ...base, op: 'status', task: 'short', status: 'done' },
      { ...base, op: 'assign', task: contentId(1), assignee: 'carol', assigneeMesh: meshB.did },
      { ...base, op: 'due', task: contentId(1), due: -1 },
      { ...base, op: 'comment', task: contentId(1), body: 'x'.repeat(8193) },
      { ...base, v: 2, op: 'create', title: 'ok' },
    ])
      assert.equal(isTaskEntry(bad), false, JSON.stringify(bad).slice(0, 80))
  })
})
