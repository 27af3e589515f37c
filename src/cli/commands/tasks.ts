/**
 * Tasks across meshes (SPEC §13): `mesh task add <room> <title>`, `mesh task list <room>`,
 * `mesh task assign <room> <task> <@name[:mesh]|did>`, `mesh task done <room> <task>`,
 * `mesh task move <room> <task> <status>`, `mesh task comment <room> <task> <text>`,
 * `mesh task due <room> <task> <date|none>`. A task may be named by a unique prefix of its id.
 */
import { type Command, Option } from 'commander'
import { TASK_STATUSES, type TaskStatus, type TaskView } from '../../api/index.ts'
import { MeshError } from '../../errors.ts'
import { type ClientOptions, clientCommand, humanSession } from '../client.ts'
import type { CliContext } from '../context.ts'
import type { HttpClient } from '../http-client.ts'

function day(ms: number | null): string {
  return ms === null ? '' : new Date(ms).toISOString().slice(0, 10)
}

function taskLine(t: TaskView): string {
  const who = t.assignee === null ? 'unassigned' : t.assignee.name
  const due = t.due === null ? '' : `  due ${day(t.due)}`
  return `${t.id.slice(0, 8)}  ${t.status.padEnd(9)} ${t.title}  (${who})${due}`
}

function taskText(t: TaskView): string {
  return [
    taskLine(t),
    `  id ${t.id}  by ${t.createdBy.name}`,
    ...(t.body !== undefined ? [`  ${t.body}`] : []),
    ...t.comments.map((c) => `  ${c.author.name}: ${c.body}`),
  ].join('\n')
}

/** A due date as the CLI takes it: `YYYY-MM-DD`, an ISO date-time, or `none`. */
function parseDue(text: string): number | null {
  if (text === 'none') return null
  const ms = Date.parse(text)
  if (!Number.isFinite(ms)) throw new MeshError('MESH_BAD_REQUEST', 'due must be a date (YYYY-MM-DD) or none')
  return ms
}

/** The task `ref` names: its id, or a unique prefix of it (at least 4 characters). */
async function taskId(api: HttpClient, room: string, ref: string): Promise<string> {
  if (/^[A-Za-z0-9_-]{43}$/.test(ref)) return ref
  const { tasks } = await api.call('tasks', { params: { id: room } })
  const found = ref.length >= 4 ? tasks.filter((t) => t.id.startsWith(ref)) : []
  if (found.length !== 1 || found[0] === undefined)
    throw new MeshError(
      'MESH_NOT_FOUND',
      found.length > 1 ? 'more than one task by that prefix' : 'no such task',
      {
        task: ref,
      },
    )
  return found[0].id
}

export function registerTaskCommands(cli: Command, ctx: CliContext): void {
  const { out } = ctx
  const session = (options: ClientOptions) => humanSession(ctx.keystore(), options)
  const task = cli.command('task').description('tasks in rooms, across meshes')
  const command = (name: string, description: string) =>
    clientCommand(task, name, description, { proof: false })

  command('add <room> <title>', 'create a task in a room')
    .option('--body <text>', 'what the task is')
    .option('--due <date>', 'when it is due (YYYY-MM-DD)')
    .option('--assign <who>', 'assign it at once: @name, @name:mesh or a did')
    .action(
      async (
        room: string,
        title: string,
        options: ClientOptions & { body?: string; due?: string; assign?: string },
      ) => {
        const { client: api } = await session(options)
        const due = options.due !== undefined ? parseDue(options.due) : null
        let res = await api.call('createTask', {
          params: { id: room },
          body: {
            title,
            ...(options.body !== undefined ? { body: options.body } : {}),
            ...(due !== null ? { due } : {}),
          },
        })
        if (options.assign !== undefined)
          res = await api.call('assignTask', {
            params: { id: room, task: res.id },
            body: { assignee: options.assign },
          })
        out.print(res, `task ${res.id} created\n${taskLine(res)}`)
      },
    )

  command('list <room>', 'the tasks of a room')
    .addOption(new Option('--status <status>', 'only tasks in this status').choices(TASK_STATUSES))
    .action(async (room: string, options: ClientOptions & { status?: TaskStatus }) => {
      const { client: api } = await session(options)
      const { tasks } = await api.call('tasks', {
        params: { id: room },
        query: options.status !== undefined ? { status: options.status } : {},
      })
      out.print(tasks, tasks.map(taskLine).join('\n') || 'no tasks')
    })

  command('show <room> <task>', 'one task, with its comments').action(
    async (room: string, ref: string, options: ClientOptions) => {
      const { client: api } = await session(options)
      const res = await api.call('task', { params: { id: room, task: await taskId(api, room, ref) } })
      out.print(res, taskText(res))
    },
  )

  command(
    'assign <room> <task> <who>',
    'assign a task: @name, @name:mesh (another mesh’s member) or a did',
  ).action(async (room: string, ref: string, who: string, options: ClientOptions) => {
    const { client: api } = await session(options)
    const id = await taskId(api, room, ref)
    const res = await api.call('assignTask', { params: { id: room, task: id }, body: { assignee: who } })
    out.print(res, taskLine(res))
  })

  const move = async (room: string, ref: string, status: TaskStatus, options: ClientOptions) => {
    const { client: api } = await session(options)
    const id = await taskId(api, room, ref)
    const res = await api.call('setTaskStatus', { params: { id: room, task: id }, body: { status } })
    out.print(res, taskLine(res))
  }

  command('done <room> <task>', 'mark a task done (its assignee or a moderator)').action(
    (room: string, ref: string, options: ClientOptions) => move(room, ref, 'done', options),
  )

  command('move <room> <task> <status>', `move a task: ${TASK_STATUSES.join(', ')}`).action(
    (room: string, ref: string, status: string, options: ClientOptions) => {
      if (!(TASK_STATUSES as readonly string[]).includes(status))
        throw new MeshError('MESH_BAD_REQUEST', `status must be one of ${TASK_STATUSES.join(', ')}`)
      return move(room, ref, status as TaskStatus, options)
    },
  )

  command('comment <room> <task> <text>', 'comment on a task').action(
    async (room: string, ref: string, text: string, options: ClientOptions) => {
      const { client: api } = await session(options)
      const id = await taskId(api, room, ref)
      const res = await api.call('commentTask', { params: { id: room, task: id }, body: { body: text } })
      out.print(res, taskText(res))
    },
  )

  command('due <room> <task> <date>', 'set when a task is due (YYYY-MM-DD), or none').action(
    async (room: string, ref: string, date: string, options: ClientOptions) => {
      const { client: api } = await session(options)
      const id = await taskId(api, room, ref)
      const res = await api.call('setTaskDue', {
        params: { id: room, task: id },
        body: { due: parseDue(date) },
      })
      out.print(res, taskLine(res))
    },
  )
}
