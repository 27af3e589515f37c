/**
 * The audit log's full check: one walk over one snapshot of the rows and the head,
 * naming each problem by position and kind.
 */

import type { AbortOptions } from '@libp2p/interface'
import { AUDIT_PROBLEM_KINDS } from '../api/schemas/audit.ts'
import type { Logger } from '../log.ts'
import type { Sublevel } from '../store/index.ts'
import {
  type AuditHead,
  type AuditRow,
  GENESIS_HASH,
  HASH_PATTERN,
  isRowShaped,
  rowHash,
  verifyRowSignature,
} from './audit-row.ts'
import { ENTRY_KEY_PATTERN, ENTRY_PREFIX, HEAD_KEY, isHead } from './log-keys.ts'

export { AUDIT_PROBLEM_KINDS }
export type AuditProblemKind = (typeof AUDIT_PROBLEM_KINDS)[number]

export interface AuditProblem {
  /** The position in the log where the problem was found (the first one, for a run of missing rows). */
  seq: number
  kind: AuditProblemKind
  message: string
}

export interface AuditVerifyOptions extends AbortOptions {
  /**
   * A head seen earlier (kept by an operator, or shown by a peer; a signed checkpoint's
   * `{seq: size, hash: head}`): the log must still hold that row with that hash. This
   * is what catches a rewrite by someone who holds the mesh key, or a truncation that
   * also rolled the stored head back.
   */
  checkpoint?: AuditHead
}

export interface AuditVerifyReport {
  ok: boolean
  /** Rows read. */
  count: number
  /** The head as stored, or null for an empty log. */
  head: AuditHead | null
  /** At most `MAX_PROBLEMS`, in log order. */
  problems: AuditProblem[]
}

const MAX_PROBLEMS = 1000

export interface VerifyLogComponents {
  /** The 'audit' sublevel. */
  sublevel: Sublevel
  logger: Logger
}

/**
 * Walks the whole log from one snapshot and reports every problem found:
 * - `altered`: a row whose content no longer matches its hash, a malformed row, a
 *   row that does not link to the one before although both are signed (a substituted
 *   or forked row), a head that does not match its row, or rows beyond the head;
 * - `bad-signature`: the row's hash is not signed by its `signer`;
 * - `unknown-signer`: signed correctly, but by a key this mesh never used;
 * - `reordered`: an intact row stored at another row's position;
 * - `removed`: positions missing before the last row;
 * - `truncated`: rows missing at the end, up to the stored head or the checkpoint.
 *
 * `known`: every key whose signature on a row counts; `rollbacks`: problems found
 * before (a rollback seen this run), reported first every time.
 */
export async function verifyLog(
  { sublevel, logger: log }: VerifyLogComponents,
  options: AuditVerifyOptions & { known: Set<string>; rollbacks?: AuditProblem[] },
): Promise<AuditVerifyReport> {
  const known = options.known
  const problems: AuditProblem[] = [...(options.rollbacks ?? [])]
  const report = (seq: number, kind: AuditProblemKind, message: string): void => {
    if (problems.length < MAX_PROBLEMS) problems.push({ seq, kind, message })
  }
  const checkpoint = options.checkpoint
  let count = 0
  let head: AuditHead | null = null
  let headSeen = false
  let lastPosition = 0
  // The previous row, when it was intact and in its place: the only kind a link is checked against.
  let previous: { position: number; hash: string } | undefined
  let lastRowHash: string | undefined
  let checkpointFound = false

  for await (const [key, value] of sublevel.iterator({ gte: ENTRY_PREFIX, lte: HEAD_KEY })) {
    options.signal?.throwIfAborted()
    if (key === HEAD_KEY) {
      headSeen = true
      if (isHead(value)) head = { seq: value.seq, hash: value.hash }
      continue
    }
    const match = ENTRY_KEY_PATTERN.exec(key)
    if (match === null) {
      report(
        lastPosition + 1,
        'altered',
        `unexpected key ${JSON.stringify(key.slice(0, 64))} in the audit log`,
      )
      continue
    }
    const position = Number(match[1])
    count++
    if (position > lastPosition + 1) {
      report(lastPosition + 1, 'removed', missingMessage(lastPosition + 1, position - 1))
    }
    lastPosition = position
    lastRowHash = undefined

    const check = checkRow(value, known)
    if (check.problem !== undefined) {
      report(position, check.problem.kind, check.problem.message)
      previous = undefined
      continue
    }
    const row = value as AuditRow
    if (row.seq !== position) {
      report(position, 'reordered', `row ${row.seq} is stored at position ${position}`)
      previous = undefined
      continue
    }
    if (position === 1 && row.prev !== GENESIS_HASH) {
      report(position, 'altered', 'the first row does not start from the genesis hash')
    } else if (previous !== undefined && previous.position === position - 1 && row.prev !== previous.hash) {
      report(
        position,
        'altered',
        `row ${position} does not link to row ${position - 1} (substituted or forked)`,
      )
    }
    if (checkpoint !== undefined && checkpoint.seq === position) {
      checkpointFound = true
      if (checkpoint.hash !== row.hash) {
        report(
          position,
          'altered',
          `row ${position} differs from the checkpoint: history rewritten or rolled back`,
        )
      }
    }
    previous = { position, hash: row.hash }
    lastRowHash = row.hash
  }

  if (headSeen && head === null) {
    report(lastPosition, 'altered', 'the stored head is malformed')
  } else if (!headSeen && count > 0) {
    report(lastPosition, 'truncated', 'the stored head is missing')
  }
  if (head !== null) {
    if (lastPosition < head.seq) {
      report(
        lastPosition + 1,
        'truncated',
        `${missingMessage(lastPosition + 1, head.seq)} (the head is ${head.seq})`,
      )
    } else if (lastPosition > head.seq) {
      report(
        head.seq + 1,
        'altered',
        `rows after the head (${head.seq}): the head was rolled back or rows were added`,
      )
    } else if (lastRowHash !== undefined && lastRowHash !== head.hash) {
      report(head.seq, 'altered', `row ${head.seq} does not match the stored head`)
    }
  }
  if (checkpoint !== undefined && !checkpointFound && lastPosition < checkpoint.seq) {
    report(
      lastPosition + 1,
      'truncated',
      `the log ends at row ${lastPosition} but a checkpoint saw row ${checkpoint.seq}: truncated or rolled back`,
    )
  }

  const ok = problems.length === 0
  if (!ok) {
    log.warn(
      { event: 'audit.verify.failed', count, problems: problems.length, first: problems[0] },
      'audit log verification found problems',
    )
  }
  return { ok, count, head, problems }
}

function missingMessage(from: number, to: number): string {
  return from === to ? `row ${from} is missing` : `rows ${from}–${to} are missing`
}

/** A row's own integrity, independent of where it is stored: shape, hash, signer, signature. */
function checkRow(
  value: unknown,
  known: Set<string>,
): { problem?: { kind: AuditProblemKind; message: string } } {
  if (!isRowShaped(value) || !HASH_PATTERN.test(value.prev) || !HASH_PATTERN.test(value.hash)) {
    return { problem: { kind: 'altered', message: 'the row is malformed' } }
  }
  let recomputed: string
  try {
    recomputed = rowHash(value)
  } catch {
    return { problem: { kind: 'altered', message: 'the row has no canonical form' } }
  }
  if (recomputed !== value.hash) {
    return { problem: { kind: 'altered', message: 'the row content does not match its hash' } }
  }
  if (!verifyRowSignature(value)) {
    return {
      problem: { kind: 'bad-signature', message: `the row is not signed by its signer ${value.signer}` },
    }
  }
  if (!known.has(value.signer)) {
    return {
      problem: {
        kind: 'unknown-signer',
        message: `the row is signed by ${value.signer}, not a key of this mesh`,
      },
    }
  }
  return {}
}
