import type * as Y from 'yjs'
import type { TaskEntry, TaskStatus } from './task-entries.ts'

/**
 * Tasks across meshes (SPEC §13): a task's state is the fold of its entries in order
 * (by `ts`, then key), the same on every replica that holds the same entries. A status
 * change by the assignee counts only while the assignment it names (`basis`) is still
 * the task's current one: one made before a reassignment that reached a replica late
 * changes nothing.
 */

export interface TaskPerson {
  did: string
  /** `@local_id` for one of this mesh's principals, `@local_id:mesh-name` for a foreign one. */
  name: string
  mesh: string
}

export interface TaskComment {
  id: string
  author: TaskPerson
  body: string
  ts: number
}

export interface TaskView {
  id: string
  room: string
  title: string
  body?: string
  status: TaskStatus
  assignee: TaskPerson | null
  due: number | null
  createdBy: TaskPerson
  createdAt: number
  updatedAt: number
  comments: TaskComment[]
}

/** A task as folded, with the id of its current assignment (the `basis` its assignee names). */
export interface TaskState extends TaskView {
  assignment: string | null
}

/** Every task entry of a room, in fold order (by ts, then key). */
export function taskEntries(doc: Y.Doc): Array<{ id: string; entry: TaskEntry }> {
  const list: Array<{ id: string; entry: TaskEntry }> = []
  doc.getMap<TaskEntry>('tasks').forEach((entry, id) => {
    list.push({ id, entry })
  })
  return list.sort((a, b) => a.entry.ts - b.entry.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/**
 * The room's tasks, oldest first. `person(did, mesh)` names a principal as this mesh
 * shows it (Room.displayName).
 */
export function foldTasks(
  room: string,
  doc: Y.Doc,
  name: (did: string, mesh: string) => string,
): Map<string, TaskState> {
  const person = (did: string, mesh: string): TaskPerson => ({ did, name: name(did, mesh), mesh })
  const tasks = new Map<string, TaskState>()
  for (const { id, entry } of taskEntries(doc)) {
    if (entry.op === 'create') {
      tasks.set(id, {
        id,
        room,
        title: entry.title,
        ...(entry.body !== undefined ? { body: entry.body } : {}),
        status: 'open',
        assignee: null,
        assignment: null,
        due: entry.due ?? null,
        createdBy: person(entry.author, entry.authorMesh),
        createdAt: entry.ts,
        updatedAt: entry.ts,
        comments: [],
      })
      continue
    }
    const task = tasks.get(entry.task)
    if (task === undefined) continue
    switch (entry.op) {
      case 'assign':
        task.assignee = person(entry.assignee, entry.assigneeMesh)
        task.assignment = id
        break
      case 'status':
        // A moderator's change names no basis; an assignee's counts while its assignment stands.
        if (entry.basis !== undefined && entry.basis !== task.assignment) continue
        task.status = entry.status
        break
      case 'comment':
        task.comments.push({
          id,
          author: person(entry.author, entry.authorMesh),
          body: entry.body,
          ts: entry.ts,
        })
        break
      case 'due':
        task.due = entry.due
        break
    }
    task.updatedAt = Math.max(task.updatedAt, entry.ts)
  }
  return tasks
}

/** What the API shows of a folded task. */
export function taskView(task: TaskState): TaskView {
  const { assignment: _assignment, ...view } = task
  return view
}

/** The latest `ts` of any entry of task `id` in the doc or in `queued` (written this turn), 0 if none: a new entry of it is dated after. */
export function lastTaskTs(
  doc: Y.Doc,
  id: string,
  queued: ReadonlyArray<{ key: string; value: unknown }> = [],
): number {
  let last = 0
  const consider = (entry: TaskEntry, key: string): void => {
    if ((key === id || (entry.op !== 'create' && entry.task === id)) && entry.ts > last) last = entry.ts
  }
  doc.getMap<TaskEntry>('tasks').forEach(consider)
  for (const q of queued) consider(q.value as TaskEntry, q.key)
  return last
}
