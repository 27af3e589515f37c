/**
 * The routes of a mesh's services and its reach (SPEC §10, §13): tasks, the model proxy,
 * files, connecting by URL, the relay ledger. Part of `routes` (routes.ts); a table of its
 * own so that neither file outgrows a page.
 */
import { type RouteSpec, route } from './route-spec.ts'
import * as files from './schemas/files.ts'
import * as ledger from './schemas/ledger.ts'
import * as ledgerForgive from './schemas/ledger-forgive.ts' // relay ledger forgive (SPEC §10)
import * as meshProfile from './schemas/mesh-profile.ts'
import * as model from './schemas/model.ts'
import * as rooms from './schemas/rooms.ts'
import * as tasks from './schemas/tasks.ts'

export const serviceRoutes = {
  // tasks across meshes (SPEC §13)
  createTask: route({
    method: 'POST',
    path: '/api/rooms/:id/tasks',
    session: true,
    status: 201,
    params: rooms.roomParamsSchema,
    body: tasks.createTaskBodySchema,
    response: tasks.taskSchema,
  }),
  tasks: route({
    method: 'GET',
    path: '/api/rooms/:id/tasks',
    session: true,
    params: rooms.roomParamsSchema,
    query: tasks.tasksQuerySchema,
    response: tasks.taskListSchema,
  }),
  task: route({
    method: 'GET',
    path: '/api/rooms/:id/tasks/:task',
    session: true,
    params: tasks.taskParamsSchema,
    response: tasks.taskSchema,
  }),
  assignTask: route({
    method: 'POST',
    path: '/api/rooms/:id/tasks/:task/assign',
    session: true,
    params: tasks.taskParamsSchema,
    body: tasks.assignTaskBodySchema,
    response: tasks.taskSchema,
  }),
  setTaskStatus: route({
    method: 'POST',
    path: '/api/rooms/:id/tasks/:task/status',
    session: true,
    params: tasks.taskParamsSchema,
    body: tasks.taskStatusBodySchema,
    response: tasks.taskSchema,
  }),
  commentTask: route({
    method: 'POST',
    path: '/api/rooms/:id/tasks/:task/comment',
    session: true,
    params: tasks.taskParamsSchema,
    body: tasks.taskCommentBodySchema,
    response: tasks.taskSchema,
  }),
  setTaskDue: route({
    method: 'POST',
    path: '/api/rooms/:id/tasks/:task/due',
    session: true,
    params: tasks.taskParamsSchema,
    body: tasks.taskDueBodySchema,
    response: tasks.taskSchema,
  }),
  // the model proxy (SPEC §13): OpenAI-compatible, and usage per principal
  chatCompletions: route({
    method: 'POST',
    path: '/v1/chat/completions',
    session: true,
    body: model.chatCompletionBodySchema,
    response: model.upstreamAnswerSchema,
  }),
  listModels: route({
    method: 'GET',
    path: '/v1/models',
    session: true,
    response: model.upstreamAnswerSchema,
  }),
  usage: route({
    method: 'GET',
    path: '/api/usage',
    session: true,
    query: model.usageQuerySchema,
    response: model.usageListSchema,
  }),
  // reachable by URL (SPEC §10): a mesh's manifest, fetched and verified by this node
  resolveMeshUrl: route({
    method: 'GET',
    path: '/api/connections/resolve',
    session: true,
    query: meshProfile.meshUrlQuerySchema,
    response: meshProfile.meshUrlViewSchema,
  }),

  // coordination fees (SPEC §10)
  ledger: route({
    method: 'GET',
    path: '/api/ledger',
    session: true,
    query: ledger.ledgerQuerySchema,
    response: ledger.ledgerSchema,
  }),
  // files in rooms (issue 18): the body of an upload is the file's bytes (application/octet-stream)
  uploadFile: route({
    method: 'POST',
    path: '/api/rooms/:id/files',
    session: true,
    status: 201,
    params: rooms.roomParamsSchema,
    query: files.uploadQuerySchema,
    response: files.attachmentSchema,
  }),
  // files in rooms (issue 18): the bytes (Range too); no JSON answer
  getFile: route({ method: 'GET', path: '/api/files/:cid', session: true, params: files.fileParamsSchema }),
  fileCache: route({ method: 'GET', path: '/api/files', session: true, response: files.fileCacheSchema }),

  // relay ledger forgive (SPEC §10)
  ledgerForgive: route({
    method: 'POST',
    path: '/api/ledger/forgive',
    session: true,
    body: ledgerForgive.ledgerForgiveBodySchema,
    response: ledgerForgive.ledgerForgivenSchema,
  }),
} as const satisfies Record<string, RouteSpec>
