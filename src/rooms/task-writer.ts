import { BadRequestError, NotFoundError } from '../errors.ts'
import { parseMentions } from './notifications.ts'
import type { Room } from './room.ts'
import { contentId } from './room-entries.ts'
import { foldTasks, lastTaskTs, type TaskState, type TaskView, taskView } from './task-board.ts'
import { TASK_LIMITS, TASK_STATUSES, type TaskEntry, type TaskStatus } from './task-entries.ts'

export interface TaskWriterComponents {
  /** The room, if `did` may see it (RoomManager.access). */
  access: (roomId: string, did: string) => Promise<{ room: Room }>
  /** Posts a message as `author` (RoomManager.post): how an assignment notifies the assignee. */
  post: (roomId: string, author: string, body: string) => Promise<{ id: string }>
  /** This mesh's identity: the `authorMesh` of every entry written here. */
  ownMesh: string
  now: () => number
}

/**
 * Tasks across meshes (SPEC §13): what a local principal does to a room's tasks. Each
 * change is a task entry written through `Room.write`, so the room rules
 * (task-rules.ts) decide here as on every replica: a refusal is MESH_FORBIDDEN
 * (`details.reason` `task-rules`, `not-member`, `read-only` …).
 */
export class TaskWriter {
  readonly #c: TaskWriterComponents

  constructor(components: TaskWriterComponents) {
    this.#c = components
  }

  /** The room's tasks, oldest first; `status` keeps only those in it. */
  async list(roomId: string, did: string, status?: TaskStatus): Promise<TaskView[]> {
    const { room } = await this.#c.access(roomId, did)
    const tasks = [...this.#fold(room).values()].map(taskView)
    return status === undefined ? tasks : tasks.filter((t) => t.status === status)
  }

  async get(roomId: string, did: string, id: string): Promise<TaskView> {
    const { room } = await this.#c.access(roomId, did)
    return taskView(this.#task(room, id))
  }

  async create(
    roomId: string,
    author: string,
    input: { title: string; body?: string; due?: number },
  ): Promise<TaskView> {
    const { room } = await this.#c.access(roomId, author)
    const title = input.title.trim()
    if (title.length === 0 || Buffer.byteLength(title) > TASK_LIMITS.maxTitleBytes)
      throw new BadRequestError(`title must be 1..${TASK_LIMITS.maxTitleBytes} bytes`)
    checkBody(input.body)
    const entry: TaskEntry = {
      ...this.#base(roomId, author, this.#c.now()),
      op: 'create',
      title,
      ...(input.body !== undefined ? { body: input.body } : {}),
      ...(input.due !== undefined ? { due: checkDue(input.due) } : {}),
    }
    const id = contentId(entry)
    await room.write([{ map: 'tasks', key: id, value: entry }])
    return taskView(this.#task(room, id))
  }

  /**
   * Assigns task `id` to `assignee`: a did, or a name as mentions write it (`@carol`,
   * `@carol:beta`), of a member of the room. The assignee is then told by a message
   * that mentions them, which notifies them on their home mesh (notifications.ts).
   */
  async assign(roomId: string, author: string, id: string, assignee: string): Promise<TaskView> {
    const { room } = await this.#c.access(roomId, author)
    const task = this.#task(room, id)
    const did = this.#resolve(room, assignee)
    const member = room.member(did)
    if (member === undefined) throw new NotFoundError('not a member of this room', { assignee })
    await this.#write(room, author, id, { op: 'assign', task: id, assignee: did, assigneeMesh: member.mesh })
    const name = room.displayName(did, member.mesh)
    // Only the assignee is mentioned: an `@name` in the title is shown, not resolved (a word joiner after its `@`).
    const title = task.title.replaceAll('@', '@\u2060')
    await this.#c.post(roomId, author, `assigned task “${title}” to ${name}`)
    return taskView(this.#task(room, id))
  }

  /** Moves task `id` to `status`: as its assignee (naming the assignment) or as a moderator. */
  async setStatus(roomId: string, author: string, id: string, status: TaskStatus): Promise<TaskView> {
    if (!(TASK_STATUSES as readonly string[]).includes(status))
      throw new BadRequestError(`status must be one of ${TASK_STATUSES.join(', ')}`)
    const { room } = await this.#c.access(roomId, author)
    const task = this.#task(room, id)
    const mine = task.assignee?.did === author && task.assignee.mesh === this.#c.ownMesh
    await this.#write(room, author, id, {
      op: 'status',
      task: id,
      status,
      ...(mine && task.assignment !== null ? { basis: task.assignment } : {}),
    })
    return taskView(this.#task(room, id))
  }

  async comment(roomId: string, author: string, id: string, body: string): Promise<TaskView> {
    const { room } = await this.#c.access(roomId, author)
    this.#task(room, id)
    if (checkBody(body) === undefined) throw new BadRequestError('a comment has a body')
    await this.#write(room, author, id, { op: 'comment', task: id, body })
    return taskView(this.#task(room, id))
  }

  /** Sets (or with null clears) when task `id` is due. */
  async setDue(roomId: string, author: string, id: string, due: number | null): Promise<TaskView> {
    const { room } = await this.#c.access(roomId, author)
    this.#task(room, id)
    await this.#write(room, author, id, { op: 'due', task: id, due: due === null ? null : checkDue(due) })
    return taskView(this.#task(room, id))
  }

  #fold(room: Room): Map<string, TaskState> {
    return foldTasks(room.id, room.doc, (did, mesh) => room.displayName(did, mesh))
  }

  #task(room: Room, id: string): TaskState {
    const task = this.#fold(room).get(id)
    if (task === undefined) throw new NotFoundError('no such task', { task: id })
    return task
  }

  #base(room: string, author: string, ts: number) {
    return { v: 1 as const, room, author, authorMesh: this.#c.ownMesh, ts }
  }

  /** Writes a change of task `id`, dated after every entry of it this replica holds (so it folds after them). */
  async #write(room: Room, author: string, id: string, change: DistributiveOmit<TaskEntry, Base>) {
    // Entries of the task written this turn count too (issue 15, batch15: they reach the room at its end).
    const last = lastTaskTs(room.doc, id, room.queued('tasks'))
    const ts = Math.max(this.#c.now(), last + 1)
    const entry = { ...this.#base(room.id, author, ts), ...change } as TaskEntry
    await room.write([{ map: 'tasks', key: contentId(entry), value: entry }])
  }

  /** The did an assignee names: a did:key, or one `@name[:mesh]` of a room member. */
  #resolve(room: Room, assignee: string): string {
    const text = assignee.trim()
    const found = /^(@\S+|did:key:\S+)$/.test(text) ? parseMentions(room, text, this.#c.ownMesh) : []
    if (found.length !== 1 || found[0] === undefined)
      throw new NotFoundError('no member of this room by that name', { assignee })
    return found[0]
  }
}

type Base = 'v' | 'room' | 'author' | 'authorMesh' | 'ts'
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

function checkBody(body: string | undefined): string | undefined {
  if (body === undefined) return undefined
  if (body.trim().length === 0 || Buffer.byteLength(body) > TASK_LIMITS.maxBodyBytes)
    throw new BadRequestError(`body must be 1..${TASK_LIMITS.maxBodyBytes} bytes`)
  return body
}

function checkDue(due: number): number {
  if (!Number.isSafeInteger(due) || due < 0 || due > TASK_LIMITS.maxDue)
    throw new BadRequestError('due must be a date (ms since the epoch)')
  return due
}
