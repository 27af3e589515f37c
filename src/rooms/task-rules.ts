import type * as Y from 'yjs'
import { canWrite, isModerator } from './membership.ts'
import type { MemberEntry } from './room-entries.ts'
import type { TaskAssignEntry, TaskCreateEntry, TaskEntry } from './task-entries.ts'
import { refuse } from './update-refusal.ts'

/**
 * Tasks across meshes (SPEC §13): the room rules of a task entry, checked with every
 * update (validate-update.ts `checkRules`, after the author was found a writing member
 * as of the entry's date). Each rule depends only on the entries an entry names and on
 * membership, as a reaction's does, so every replica decides alike:
 *
 * - anyone who may write creates a task and comments on one;
 * - assigns (and sets due dates): a room `owner`/`moderator`, a member from the room's
 *   home mesh, or any member of tier ≤ 3; a foreign participant (tier 4) does not;
 *   the assignee is a member who may write, from the mesh the entry names;
 * - changes a status: a moderator, or the assignee, naming the assignment (`basis`) that
 *   made it the assignee; the task's creator also sets its due date.
 */

/** Whether `member` (the author, a member from `authorMesh`) may assign tasks in a room homed at `homeMesh`. */
export function mayAssign(member: MemberEntry, homeMesh: string): boolean {
  return isModerator(member) || member.mesh === homeMesh || member.tier <= 3
}

/** What the rules need: the room's entries so far, this update's new ones, members as of the entry's date. */
export interface TaskRuleContext {
  doc: Y.Doc
  homeMesh: string
  /** The task entries of this update, by key. */
  fresh: ReadonlyMap<string, TaskEntry>
  /** Members as of the entry's date (validate-update.ts `membersByDate(...).standing`). */
  standing: ReadonlyMap<string, MemberEntry>
}

/** The task entry `id` in the room or in this update. */
function taskEntry(ctx: TaskRuleContext, id: string): TaskEntry | undefined {
  return ctx.fresh.get(id) ?? (ctx.doc.getMap('tasks').get(id) as TaskEntry | undefined)
}

/** Refuses `entry` (by `member`, a writing member of the room) when the task rules do not allow it. */
export function checkTaskEntry(ctx: TaskRuleContext, entry: TaskEntry, member: MemberEntry): void {
  if (entry.op === 'create') return
  const task = taskEntry(ctx, entry.task)
  if (task === undefined || task.op !== 'create') refuse('unknown-task', 'no such task in this room')
  switch (entry.op) {
    case 'assign': {
      if (!mayAssign(member, ctx.homeMesh))
        refuse('task-rules', 'a foreign participant does not assign tasks', { author: entry.author })
      const assignee = ctx.standing.get(entry.assignee)
      if (!canWrite(assignee, entry.assigneeMesh))
        refuse('task-rules', 'the assignee is not a member of the room who may write', {
          assignee: entry.assignee,
        })
      return
    }
    case 'status': {
      if (isModerator(member)) return
      const basis = entry.basis === undefined ? undefined : taskEntry(ctx, entry.basis)
      if (!isAssignmentOf(basis, entry.task, entry.author, entry.authorMesh))
        refuse('task-rules', 'only the assignee or a moderator changes a task’s status', {
          author: entry.author,
        })
      return
    }
    case 'due': {
      const creator =
        (task as TaskCreateEntry).author === entry.author && task.authorMesh === entry.authorMesh
      if (!creator && !mayAssign(member, ctx.homeMesh))
        refuse('task-rules', 'only the task’s creator or one who may assign sets its due date', {
          author: entry.author,
        })
      return
    }
    default:
      return
  }
}

/** The task entries of one update's entry list, by key (built once per list, however many tasks it holds). */
const freshOf = new WeakMap<object, Map<string, TaskEntry>>()

/** `checkTaskEntry` for entry `e` of an update whose new entries are `entries` (validate-update.ts). */
export function checkTask(
  room: { doc: Y.Doc; homeMesh: string },
  entries: ReadonlyArray<{ map: string; key: string; value: unknown }>,
  e: { value: unknown },
  standing: ReadonlyMap<string, MemberEntry>,
  member: MemberEntry,
): void {
  let fresh = freshOf.get(entries)
  if (fresh === undefined) {
    fresh = new Map()
    for (const n of entries) if (n.map === 'tasks') fresh.set(n.key, n.value as TaskEntry)
    freshOf.set(entries, fresh)
  }
  checkTaskEntry({ doc: room.doc, homeMesh: room.homeMesh, fresh, standing }, e.value as TaskEntry, member)
}

/** Whether `basis` is an assignment of `task` to `did` from `mesh`. */
export function isAssignmentOf(
  basis: TaskEntry | undefined,
  task: string,
  did: string,
  mesh: string,
): basis is TaskAssignEntry {
  return (
    basis !== undefined &&
    basis.op === 'assign' &&
    basis.task === task &&
    basis.assignee === did &&
    basis.assigneeMesh === mesh
  )
}
