import { TASK_STATUSES } from '../task-entries.ts'
import { INTEGER, listOf, NUMBER, nullableObject, optionalObject, STRING, strictObject } from './common.ts'
import { ENTRY_ID, ROOM_ID } from './rooms.ts'

/**
 * Tasks across meshes (SPEC §13): a room's tasks (create, list, read, assign, move,
 * comment, due date). A task's id is its `create` entry's content id.
 */

/** Bounds on what a client may write (rooms/task-entries.ts TASK_LIMITS; a test keeps them equal). */
export const TASK_API_LIMITS = {
  maxTitleBytes: 256,
  maxBodyBytes: 8 * 1024,
  maxDue: 253_402_300_799_000,
  /** `@name[:mesh]` or a did:key. */
  maxAssigneeLength: 256,
} as const

const STATUS = { type: 'string', enum: TASK_STATUSES } as const
const DUE = { type: 'integer', minimum: 0, maximum: TASK_API_LIMITS.maxDue } as const
const BODY = { type: 'string', minLength: 1, maxLength: TASK_API_LIMITS.maxBodyBytes } as const

export const taskParamsSchema = strictObject({ id: ROOM_ID, task: ENTRY_ID }, ['id', 'task'])

export const tasksQuerySchema = optionalObject({ status: STATUS })

export const createTaskBodySchema = strictObject(
  {
    title: { type: 'string', minLength: 1, maxLength: TASK_API_LIMITS.maxTitleBytes },
    body: BODY,
    due: DUE,
  },
  ['title'],
)

/** `assignee`: `@name` (this mesh), `@name:mesh` (another mesh's member), or a did:key — a member of the room. */
export const assignTaskBodySchema = strictObject(
  { assignee: { type: 'string', minLength: 1, maxLength: TASK_API_LIMITS.maxAssigneeLength } },
  ['assignee'],
)

export const taskStatusBodySchema = strictObject({ status: STATUS }, ['status'])

export const taskCommentBodySchema = strictObject({ body: BODY }, ['body'])

/** `due` null clears it. */
export const taskDueBodySchema = strictObject(
  { due: { type: ['integer', 'null'], minimum: 0, maximum: TASK_API_LIMITS.maxDue } },
  ['due'],
)

const personSchema = strictObject({ did: STRING, name: STRING, mesh: STRING }, ['did', 'name', 'mesh'])

export const taskSchema = strictObject(
  {
    id: STRING,
    room: STRING,
    title: STRING,
    body: STRING,
    status: STATUS,
    assignee: nullableObject({ did: STRING, name: STRING, mesh: STRING }, ['did', 'name', 'mesh']),
    due: { type: ['integer', 'null'] },
    createdBy: personSchema,
    createdAt: NUMBER,
    updatedAt: NUMBER,
    comments: {
      type: 'array',
      items: strictObject({ id: STRING, author: personSchema, body: STRING, ts: INTEGER }, [
        'id',
        'author',
        'body',
        'ts',
      ]),
    },
  },
  ['id', 'room', 'title', 'status', 'assignee', 'due', 'createdBy', 'createdAt', 'updatedAt', 'comments'],
)

export const taskListSchema = listOf('tasks', taskSchema)
