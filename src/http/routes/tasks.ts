import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import {
  assignTaskBodySchema,
  createTaskBodySchema,
  roomParamsSchema,
  taskCommentBodySchema,
  taskDueBodySchema,
  taskParamsSchema,
  taskStatusBodySchema,
  tasksQuerySchema,
} from '../../api/index.ts'
import { type RoomManager, type TaskStatus, TaskWriter } from '../../rooms/index.ts'
import { sessionOf } from './session.ts'

export interface TaskRoutesInit {
  rooms: RoomManager
  now?: () => number
}

/**
 * Tasks across meshes (SPEC §13): `POST|GET /api/rooms/:id/tasks`,
 * `GET /api/rooms/:id/tasks/:task` and `POST /api/rooms/:id/tasks/:task/(assign|status|comment|due)`,
 * as the session's principal. The room rules decide (rooms/task-rules.ts): a refusal is
 * MESH_FORBIDDEN with `details.reason`; an unknown room, task or assignee MESH_NOT_FOUND.
 */
export const taskRoutes: FastifyPluginAsync<TaskRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  const onRequest = app.requireSession
  const { rooms } = init
  const tasks = new TaskWriter({
    access: (room, did) => rooms.access(room, did),
    post: (room, did, body) => rooms.post(room, did, body),
    ownMesh: rooms.ownMesh,
    now: init.now ?? Date.now,
  })

  app.post(
    '/api/rooms/:id/tasks',
    { onRequest, schema: { params: roomParamsSchema, body: createTaskBodySchema } },
    async (request, reply) => {
      const { title, body, due } = request.body
      const task = await tasks.create(request.params.id, sessionOf(request).did, {
        title,
        ...(body !== undefined ? { body } : {}),
        ...(due !== undefined ? { due } : {}),
      })
      return reply.status(201).send(task)
    },
  )

  app.get(
    '/api/rooms/:id/tasks',
    { onRequest, schema: { params: roomParamsSchema, querystring: tasksQuerySchema } },
    async (request) => ({
      tasks: await tasks.list(request.params.id, sessionOf(request).did, request.query.status),
    }),
  )

  app.get(
    '/api/rooms/:id/tasks/:task',
    { onRequest, schema: { params: taskParamsSchema } },
    async (request) => tasks.get(request.params.id, sessionOf(request).did, request.params.task),
  )

  // Each change of one task: its path, its body's schema, and what it does.
  const change = <B>(
    path: string,
    body: object,
    run: (room: string, did: string, task: string, body: B) => Promise<unknown>,
  ) =>
    app.post(path, { onRequest, schema: { params: taskParamsSchema, body } }, async (request) => {
      const { id, task } = request.params
      return run(id, sessionOf(request).did, task, request.body as B)
    })
  change<{ assignee: string }>('/api/rooms/:id/tasks/:task/assign', assignTaskBodySchema, (r, d, t, b) =>
    tasks.assign(r, d, t, b.assignee),
  )
  change<{ status: TaskStatus }>('/api/rooms/:id/tasks/:task/status', taskStatusBodySchema, (r, d, t, b) =>
    tasks.setStatus(r, d, t, b.status),
  )
  change<{ body: string }>('/api/rooms/:id/tasks/:task/comment', taskCommentBodySchema, (r, d, t, b) =>
    tasks.comment(r, d, t, b.body),
  )
  change<{ due: number | null }>('/api/rooms/:id/tasks/:task/due', taskDueBodySchema, (r, d, t, b) =>
    tasks.setDue(r, d, t, b.due),
  )
}
