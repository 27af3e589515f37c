import type { AuditLog, RefusalThrottle } from '../audit/index.ts'
import { type RejectedLog, rejectionFrom } from '../audit/index.ts'
import { MeshError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { boundDetails } from './connection-book.ts'

/** The reputation hook's event: one message from a peer whose envelope verified. */
export interface InteractionEvent {
  mesh: string
  principal?: string
  outcome: 'accepted' | 'refused'
  reason: string
}

export interface RefusalsComponents {
  audit: Pick<AuditLog, 'append'>
  rejected: Pick<RejectedLog, 'record'>
  logger: Logger
  /** Thins a peer's rate-limit refusals to one record per interval (keyed by peer). */
  rateLimited: Pick<RefusalThrottle, 'admit'>
  /** Reputation hook; never awaited, must not throw (a throw is logged). */
  onInteraction?: (event: InteractionEvent) => void
}

/**
 * Where every refusal of the federation handshake is written: the rejected log and an
 * audit row (`federation.refused`), for an HTTP act, a wire message or a key refresh;
 * a peer's flood of rate-limit refusals is thinned to one record per interval.
 */
export class Refusals {
  readonly #c: RefusalsComponents

  constructor(components: RefusalsComponents) {
    this.#c = components
  }

  /** Runs a local act from the HTTP API; a MeshError it throws is recorded, then rethrown. */
  async httpAct<T>(
    kind: string,
    actor: string,
    subject: () => string | null,
    run: () => Promise<T>,
  ): Promise<T> {
    try {
      return await run()
    } catch (err) {
      if (err instanceof MeshError) {
        const peer = kind === 'connect' ? subject() : null
        await this.record(err, {
          kind: `http.${kind}`,
          ...(peer !== null ? { peer } : {}),
          actor,
          subject: subject(),
        }).catch((e: unknown) => {
          this.#c.logger.error(
            { event: 'federation.refusal_record_failed', err: e },
            'recording a refusal failed',
          )
        })
      }
      throw err
    }
  }

  /** A refused wire message from `remoteDid`; never throws. */
  async wire(
    err: MeshError,
    remoteDid: string,
    envelope: { id?: unknown; type?: unknown; body?: unknown } | undefined,
  ): Promise<void> {
    if (err.code === 'MESH_RATE_LIMITED') {
      const admitted = this.#c.rateLimited.admit(remoteDid)
      if (admitted === undefined) return
      if (admitted.suppressedSinceLast > 0) err.details.suppressedSinceLast = admitted.suppressedSinceLast
    }
    const type = typeof envelope?.type === 'string' ? envelope.type : 'envelope'
    const body = envelope?.body as { connectionId?: unknown } | undefined
    const connectionId = typeof body?.connectionId === 'string' ? body.connectionId : null
    await this.record(err, {
      kind: type,
      peer: remoteDid,
      actor: remoteDid,
      subject: connectionId ?? (typeof envelope?.id === 'string' ? envelope.id : null),
    }).catch((e: unknown) => {
      this.#c.logger.error(
        { event: 'federation.refusal_record_failed', err: e },
        'recording a refusal failed',
      )
    })
  }

  async record(
    err: MeshError,
    context: { kind: string; peer?: string; actor: string; subject: string | null },
  ): Promise<void> {
    await this.#c.rejected.record(
      rejectionFrom(err, {
        kind: context.kind,
        ...(context.peer !== undefined ? { peer: context.peer } : {}),
      }),
    )
    await this.#c.audit.append({
      action: 'federation.refused',
      actor: context.actor,
      ...(context.subject !== null ? { subject: context.subject.slice(0, 512) } : {}),
      details: {
        kind: context.kind,
        code: err.code,
        reason: err.message.slice(0, 512),
        ...(context.peer !== undefined ? { peer: context.peer } : {}),
        details: boundDetails(err.details),
      },
    })
  }

  /** Tells the reputation hook of a message from `mesh`, accepted or refused. */
  interaction(
    mesh: string,
    principal: string | undefined,
    outcome: 'accepted' | 'refused',
    reason: string,
  ): void {
    try {
      this.#c.onInteraction?.({ mesh, ...(principal !== undefined ? { principal } : {}), outcome, reason })
    } catch (err) {
      this.#c.logger.error({ event: 'federation.interaction_hook_failed', err }, 'the interaction hook threw')
    }
  }
}
