/** Why an update was refused: `details.reason` of the MeshError. */
export const REJECT_REASONS = [
  'too-large',
  'malformed',
  'deletes',
  'incomplete',
  'overwrite',
  'foreign-type',
  'not-json',
  'bad-shape',
  'bad-key',
  'wrong-room',
  'missing-seal',
  'bad-seal',
  'unknown-key',
  'retired-key',
  'orphan-seal',
  'unbound-client',
  'client-spoof',
  'client-scope',
  'client-commitment',
  'replay-conflict',
  'future-ts',
  'past-ts',
  'not-member',
  'membership-ended',
  'read-only',
  'not-author-or-moderator',
  'unknown-message',
  'meta',
  'member-rules',
  'foreign-limit',
  'apply-failed',
  'unvouched-hole',
  'member-credential', // kinds across meshes: a member entry's credential does not hold
  // tasks across meshes (SPEC §13): a task entry names no task, or breaks the task rules
  'unknown-task',
  'task-rules',
] as const
export type RejectReason = (typeof REJECT_REASONS)[number]

/** A refusal inside validation; `validateUpdate` turns it into a MeshError. */
export class Refusal extends Error {
  readonly reason: RejectReason
  readonly info: Record<string, unknown>
  constructor(reason: RejectReason, message: string, info: Record<string, unknown> = {}) {
    super(message)
    this.reason = reason
    this.info = info
  }
}

export function refuse(reason: RejectReason, message: string, info: Record<string, unknown> = {}): never {
  throw new Refusal(reason, message, info)
}

/**
 * Refusals that nothing this replica learns later can lift: such an entry's place may
 * become a hole (update-salvage.ts). The others wait — a key, a member, a message or a
 * client binding not yet received, a date still ahead, a room full for now — so what
 * that client wrote from there on is left for a later sync, as if not yet received.
 */
export const FINAL_REASONS: ReadonlySet<RejectReason> = new Set<RejectReason>([
  'bad-shape',
  'bad-key',
  'wrong-room',
  'missing-seal',
  'bad-seal',
  'orphan-seal',
  'retired-key',
  'client-scope',
  'client-spoof',
  'client-commitment',
  'overwrite',
  'meta',
  'member-rules',
  'membership-ended',
  'past-ts',
  'read-only',
  'not-author-or-moderator',
])
