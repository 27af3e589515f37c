/**
 * Rollback checks: whether the log still extends a signed checkpoint of itself — the
 * local checkpoint file at start, or one a peer hands back (`witness`). A rollback
 * found is reported once per source and checkpoint: an `audit.rollback_detected` log
 * event and audit row, the local checkpoint file frozen as evidence, and the problem
 * kept for every later `verify` of this run.
 */

import type { Logger } from '../log.ts'
import type { Sublevel } from '../store/index.ts'
import { AUDIT_LIMITS, type AuditEntryInput, type AuditHead, isRowShaped } from './audit-row.ts'
import type { AuditProblem } from './audit-verify.ts'
import { type AuditCheckpoint, isSignedCheckpoint } from './checkpoint.ts'
import type { CheckpointFile } from './checkpoint-file.ts'
import { entryKey } from './log-keys.ts'

export interface RollbackWatchComponents {
  /** The 'audit' sublevel. */
  sublevel: Sublevel
  logger: Logger
  /** The log's head now. */
  head: () => AuditHead | null
  /** The log's head as a checkpoint signed by the mesh key now. */
  checkpoint: () => AuditCheckpoint
  /** Every key whose signature on a checkpoint of this mesh counts. */
  knownKeys: () => Set<string>
  append: (entry: AuditEntryInput) => Promise<unknown>
  /** Where the latest checkpoint is kept, if anywhere. */
  checkpointFile?: CheckpointFile | undefined
}

export class RollbackWatch {
  readonly #c: RollbackWatchComponents
  readonly #mesh: string
  // Rollbacks found this run (against the local checkpoint file or one a peer handed
  // back): every verify reports them until the node restarts.
  readonly #rollbacks: AuditProblem[] = []
  readonly #reported = new Set<string>()

  constructor(components: RollbackWatchComponents, init: { mesh: string }) {
    this.#c = components
    this.#mesh = init.mesh
  }

  /** The rollbacks found this run. */
  get problems(): readonly AuditProblem[] {
    return this.#rollbacks
  }

  /** Whether `value` is a checkpoint of this mesh signed by one of its keys. */
  isOurs(value: unknown): value is AuditCheckpoint {
    return isSignedCheckpoint(value) && value.mesh === this.#mesh && this.#c.knownKeys().has(value.signer)
  }

  /** See `AuditLog.witness`. */
  async witness(value: unknown, source: string): Promise<'ok' | 'ignored' | 'rolled-back'> {
    if (!this.isOurs(value)) {
      this.#c.logger.debug({ event: 'audit.witness.ignored', source }, 'not a checkpoint of this mesh')
      return 'ignored'
    }
    const problem = await this.#extends(value)
    if (problem === undefined) return 'ok'
    await this.#rolledBack(problem, source, value)
    return 'rolled-back'
  }

  /** At start: compares the log with the local checkpoint file, then saves the current one. */
  async checkLocal(): Promise<void> {
    const local = this.#c.checkpointFile
    if (local === undefined) return
    const file = local.path
    const log = this.#c.logger
    let saved: unknown
    try {
      saved = await local.read()
    } catch (err) {
      log.error(
        { event: 'audit.checkpoint.unreadable', file, err },
        'the local audit checkpoint is unreadable',
      )
      saved = null
    }
    if (saved === undefined) {
      log.info({ event: 'audit.checkpoint.none', file }, 'no local audit checkpoint yet')
    } else if (!this.isOurs(saved)) {
      await this.#rolledBack(
        {
          seq: (this.#c.head()?.seq ?? 0) + 1,
          kind: 'rolled-back',
          message: `the local checkpoint ${file} is unreadable or not signed by this mesh: replaced or tampered with`,
        },
        'local-checkpoint',
      )
    } else {
      const problem = await this.#extends(saved)
      if (problem !== undefined) await this.#rolledBack(problem, 'local-checkpoint', saved)
    }
    this.save()
  }

  /** Keeps the current checkpoint in the local file (unless frozen as evidence). */
  save(): void {
    this.#c.checkpointFile?.save(() => this.#c.checkpoint())
  }

  /** Whether the log still extends `checkpoint`: at least its size, and its last row unchanged. */
  async #extends(checkpoint: AuditCheckpoint): Promise<AuditProblem | undefined> {
    if (checkpoint.size === 0) return undefined
    const size = this.#c.head()?.seq ?? 0
    const row = await this.#c.sublevel.get(entryKey(checkpoint.size))
    if (size < checkpoint.size || !isRowShaped(row)) {
      return {
        seq: Math.min(size, checkpoint.size - 1) + 1,
        kind: 'rolled-back',
        message: `the log has ${size} rows but a checkpoint signed ${checkpoint.ts} saw ${checkpoint.size}: truncated or rolled back`,
      }
    }
    if (row.hash !== checkpoint.head) {
      return {
        seq: checkpoint.size,
        kind: 'rolled-back',
        message: `row ${checkpoint.size} differs from a checkpoint signed ${checkpoint.ts}: history rewritten or rolled back`,
      }
    }
    return undefined
  }

  async #rolledBack(problem: AuditProblem, source: string, checkpoint?: AuditCheckpoint): Promise<void> {
    const key = `${source}:${checkpoint?.size ?? ''}:${checkpoint?.head ?? ''}`
    if (this.#reported.has(key)) return
    this.#reported.add(key)
    this.#rollbacks.push({ ...problem, message: `${problem.message} (${source})` })
    const file = this.#c.checkpointFile
    // The local checkpoint is now evidence: later appends do not overwrite it.
    file?.freeze()
    this.#c.logger.error(
      {
        event: 'audit.rollback_detected',
        source,
        head: this.#c.head(),
        checkpoint: checkpoint ?? null,
        problem,
        ...(file !== undefined ? { file: file.path } : {}),
      },
      `audit log rollback detected: ${problem.message} (${source})`,
    )
    await this.#c.append({
      action: 'audit.rollback_detected',
      subject: source.slice(0, AUDIT_LIMITS.maxSubjectLength),
      details: {
        source,
        message: problem.message,
        size: this.#c.head()?.seq ?? 0,
        ...(checkpoint !== undefined ? { checkpoint } : {}),
      },
    })
  }
}
