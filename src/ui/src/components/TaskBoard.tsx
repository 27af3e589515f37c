import {
  Badge,
  Button,
  Card,
  Group,
  Paper,
  Select,
  SimpleGrid,
  Stack,
  Text,
  TextInput,
  Title,
} from '@mantine/core'
import { type FormEvent, useState } from 'react'
import { type Member, TASK_STATUSES, type TaskStatus, type TaskView } from '../../../api/index.ts'
import { useAction, usePoll } from '../lib/hooks.ts'
import { useSession } from '../lib/session.tsx'
import { EmptyState, ErrorState, Loading } from './common.tsx'

const COLUMN_TITLES: Record<TaskStatus, string> = {
  open: 'Open',
  doing: 'Doing',
  done: 'Done',
  cancelled: 'Cancelled',
}

/**
 * Tasks across meshes (SPEC §13): a room's board, one column per status. Anyone who may
 * write adds a task; assigning names a member (`@name`, or `@name:mesh` for another
 * mesh's); only the assignee or a moderator moves one — the node says no otherwise, with
 * its MESH_… code.
 */
export function TaskBoard({ roomId, members }: { roomId: string; members: Member[] | undefined }) {
  const session = useSession()
  const params = { id: roomId }
  const tasks = usePoll(() => session.call('tasks', { params }), 3000, [session, roomId])
  const [title, setTitle] = useState('')
  const create = useAction(async () => {
    await session.call('createTask', { params, body: { title: title.trim() } })
    setTitle('')
    tasks.reload()
  })
  const assign = useAction(async (task: string, assignee: string) => {
    await session.call('assignTask', { params: { id: roomId, task }, body: { assignee } })
    tasks.reload()
  })
  const move = useAction(async (task: string, status: TaskStatus) => {
    await session.call('setTaskStatus', { params: { id: roomId, task }, body: { status } })
    tasks.reload()
  })
  const comment = useAction(async (task: string, body: string) => {
    await session.call('commentTask', { params: { id: roomId, task }, body: { body } })
    tasks.reload()
  })
  const onSubmit = (e: FormEvent) => {
    e.preventDefault()
    if (title.trim().length > 0) void create.run()
  }
  const people = (members ?? []).map((m) => ({ value: m.name, label: m.name }))
  const list = tasks.data?.tasks ?? []
  return (
    <Card withBorder data-testid="task-board">
      <Group justify="space-between" mb="xs">
        <Title order={3} size="h5">
          Tasks
        </Title>
        <form onSubmit={onSubmit}>
          <Group gap="xs">
            <TextInput
              size="xs"
              placeholder="New task"
              aria-label="New task title"
              value={title}
              maxLength={256}
              onChange={(e) => setTitle(e.currentTarget.value)}
              data-testid="task-title"
            />
            <Button size="xs" type="submit" loading={create.busy} data-testid="task-add">
              Add
            </Button>
          </Group>
        </form>
      </Group>
      {[tasks.error, create.error, assign.error, move.error, comment.error].map(
        (error, i) =>
          error !== undefined && (
            // biome-ignore lint/suspicious/noArrayIndexKey: one slot per action
            <ErrorState key={i} error={error} title="Refused" />
          ),
      )}
      {tasks.data === undefined ? (
        <Loading label="Loading tasks…" />
      ) : list.length === 0 ? (
        <EmptyState>No tasks in this room yet.</EmptyState>
      ) : (
        <SimpleGrid cols={{ base: 1, sm: 2, lg: 4 }}>
          {TASK_STATUSES.map((status) => (
            <Stack
              key={status}
              gap="xs"
              data-testid={`task-column-${status}`}
              aria-label={`${COLUMN_TITLES[status]} tasks`}
            >
              <Text fw={600} size="sm">
                {COLUMN_TITLES[status]} ({list.filter((t) => t.status === status).length})
              </Text>
              {list
                .filter((t) => t.status === status)
                .map((t) => (
                  <TaskCard
                    key={t.id}
                    task={t}
                    people={people}
                    busy={assign.busy || move.busy}
                    onAssign={(who) => void assign.run(t.id, who)}
                    onMove={(to) => void move.run(t.id, to)}
                    onComment={(body) => comment.run(t.id, body)}
                  />
                ))}
            </Stack>
          ))}
        </SimpleGrid>
      )}
    </Card>
  )
}

function TaskCard({
  task,
  people,
  busy,
  onAssign,
  onMove,
  onComment,
}: {
  task: TaskView
  people: Array<{ value: string; label: string }>
  busy: boolean
  onAssign: (who: string) => void
  onMove: (status: TaskStatus) => void
  onComment: (body: string) => Promise<unknown>
}) {
  const [note, setNote] = useState('')
  const onSubmit = (e: FormEvent) => {
    e.preventDefault()
    const body = note.trim()
    if (body.length === 0) return
    void onComment(body).then(() => setNote(''))
  }
  return (
    <Paper withBorder p="xs" data-testid="task" data-task={task.id} data-status={task.status}>
      <Text size="sm" fw={600}>
        {task.title}
      </Text>
      <Group gap={4} mb={4}>
        <Badge
          size="xs"
          variant="light"
          color={task.assignee === null ? 'gray' : 'blue'}
          data-testid="task-assignee"
        >
          {task.assignee?.name ?? 'unassigned'}
        </Badge>
        {task.due !== null && (
          <Badge size="xs" variant="outline">
            due {new Date(task.due).toISOString().slice(0, 10)}
          </Badge>
        )}
      </Group>
      {task.body !== undefined && (
        <Text size="xs" mb={4}>
          {task.body}
        </Text>
      )}
      {task.comments.map((c) => (
        <Text key={c.id} size="xs" c="dimmed" data-testid="task-comment">
          <b>{c.author.name}</b> {c.body}
        </Text>
      ))}
      <Stack gap={4}>
        <Select
          size="xs"
          placeholder="Assign…"
          aria-label={`Assign ${task.title}`}
          data={people}
          value={null}
          disabled={busy}
          onChange={(v) => v !== null && onAssign(v)}
          data-testid="task-assign"
        />
        <Select
          size="xs"
          placeholder="Move…"
          aria-label={`Move ${task.title}`}
          data={TASK_STATUSES.filter((s) => s !== task.status).map((s) => ({
            value: s,
            label: COLUMN_TITLES[s],
          }))}
          value={null}
          disabled={busy}
          onChange={(v) => v !== null && onMove(v as TaskStatus)}
          data-testid="task-move"
        />
        <form onSubmit={onSubmit}>
          <TextInput
            size="xs"
            placeholder="Comment…"
            aria-label={`Comment on ${task.title}`}
            value={note}
            maxLength={8192}
            onChange={(e) => setNote(e.currentTarget.value)}
            data-testid="task-comment-input"
          />
        </form>
      </Stack>
    </Paper>
  )
}
