import { TASK_STATUSES, type TaskEntry } from '../api/task-entries.ts'
import { isDidKey } from '../identity/index.ts'

/**
 * Tasks across meshes (SPEC §13): the shape checks and limits of a room's `tasks` entries
 * (their types: api/task-entries.ts). Values come from the network: every field is checked.
 */
export {
  TASK_OPS,
  TASK_STATUSES,
  type TaskAssignEntry,
  type TaskCommentEntry,
  type TaskCreateEntry,
  type TaskDueEntry,
  type TaskEntry,
  type TaskOp,
  type TaskStatus,
  type TaskStatusEntry,
} from '../api/task-entries.ts'

export const TASK_LIMITS = {
  /** Longest title, UTF-8 bytes. */
  maxTitleBytes: 256,
  /** Longest description or comment, UTF-8 bytes (a message's limit). */
  maxBodyBytes: 8 * 1024,
  /** Latest due date: the year 9999. */
  maxDue: 253_402_300_799_000,
} as const

type Obj = Record<string, unknown>

const BASE = ['v', 'room', 'author', 'authorMesh', 'ts', 'op'] as const
const ID_RE = /^[A-Za-z0-9_-]{43}$/

/** Per op: its required and optional fields beyond the base ones. */
const FIELDS: Record<TaskEntry['op'], { required: string[]; optional: string[] }> = {
  create: { required: ['title'], optional: ['body', 'due'] },
  assign: { required: ['task', 'assignee', 'assigneeMesh'], optional: [] },
  status: { required: ['task', 'status'], optional: ['basis'] },
  comment: { required: ['task', 'body'], optional: [] },
  due: { required: ['task', 'due'], optional: [] },
}

function isObj(v: unknown): v is Obj {
  return (
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
  )
}

function text(v: unknown, maxBytes: number): v is string {
  return typeof v === 'string' && v.trim().length > 0 && Buffer.byteLength(v, 'utf8') <= maxBytes
}

function isDue(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= TASK_LIMITS.maxDue
}

export function isTaskId(v: unknown): v is string {
  return typeof v === 'string' && ID_RE.test(v)
}

export function isTaskEntry(v: unknown): v is TaskEntry {
  if (!isObj(v) || typeof v.op !== 'string' || !Object.hasOwn(FIELDS, v.op)) return false
  const fields = FIELDS[v.op as TaskEntry['op']]
  for (const k of [...BASE, ...fields.required]) if (!(k in v)) return false
  for (const k of Object.keys(v))
    if (
      !(BASE as readonly string[]).includes(k) &&
      !fields.required.includes(k) &&
      !fields.optional.includes(k)
    )
      return false
  if (
    v.v !== 1 ||
    typeof v.room !== 'string' ||
    !isDidKey(v.author) ||
    !isDidKey(v.authorMesh) ||
    !(typeof v.ts === 'number' && Number.isSafeInteger(v.ts) && v.ts >= 0)
  )
    return false
  switch (v.op) {
    case 'create':
      return (
        text(v.title, TASK_LIMITS.maxTitleBytes) &&
        (v.body === undefined || text(v.body, TASK_LIMITS.maxBodyBytes)) &&
        (v.due === undefined || isDue(v.due))
      )
    case 'assign':
      return isTaskId(v.task) && isDidKey(v.assignee) && isDidKey(v.assigneeMesh)
    case 'status':
      return (
        isTaskId(v.task) &&
        (TASK_STATUSES as readonly unknown[]).includes(v.status) &&
        (v.basis === undefined || isTaskId(v.basis))
      )
    case 'comment':
      return isTaskId(v.task) && text(v.body, TASK_LIMITS.maxBodyBytes)
    default:
      return isTaskId(v.task) && (v.due === null || isDue(v.due))
  }
}
