/**
 * Tasks across meshes (SPEC §13): the entries of a room's `tasks` map, as the node writes
 * and checks them (rooms/task-entries.ts, rooms/task-rules.ts) and as the console reads
 * them. Every change to a task is a new entry, sealed by its author's mesh like a
 * message and never overwritten; a task's state is the fold of its entries
 * (rooms/task-board.ts). Imports nothing (src/api is shared).
 */

/** A task's statuses, in board order. */
export const TASK_STATUSES = ['open', 'doing', 'done', 'cancelled'] as const
export type TaskStatus = (typeof TASK_STATUSES)[number]

/** What an entry does to its task. */
export const TASK_OPS = ['create', 'assign', 'status', 'comment', 'due'] as const
export type TaskOp = (typeof TASK_OPS)[number]

/** What every task entry holds: like a message, an author, the author's mesh and a date. */
interface TaskEntryBase {
  v: 1
  room: string
  author: string
  authorMesh: string
  ts: number
}

/** A new task; its id is this entry's content id. */
export interface TaskCreateEntry extends TaskEntryBase {
  op: 'create'
  title: string
  body?: string
  /** When it is due (ms since the epoch). */
  due?: number
}

/** Hands task `task` to `assignee` (a member of the room from `assigneeMesh`). */
export interface TaskAssignEntry extends TaskEntryBase {
  op: 'assign'
  task: string
  assignee: string
  assigneeMesh: string
}

/**
 * Moves task `task` to `status`. `basis`: the assignment (an `assign` entry's id) by which
 * the author, the assignee, may move it; absent when a moderator moves it.
 */
export interface TaskStatusEntry extends TaskEntryBase {
  op: 'status'
  task: string
  status: TaskStatus
  basis?: string
}

export interface TaskCommentEntry extends TaskEntryBase {
  op: 'comment'
  task: string
  body: string
}

/** Sets (or, with `due` null, clears) when task `task` is due. */
export interface TaskDueEntry extends TaskEntryBase {
  op: 'due'
  task: string
  due: number | null
}

export type TaskEntry = TaskCreateEntry | TaskAssignEntry | TaskStatusEntry | TaskCommentEntry | TaskDueEntry
