/**
 * Trust on this mesh: a tier and a behavioural reputation per principal and per peer
 * mesh (SPEC §4). Tiers are per mesh: every foreign principal starts at 4 whatever its
 * home mesh says, this mesh's architect is 1, local members carry the tier this mesh
 * gave them.
 *
 * - Reputation is computed from interactions this mesh accepted or refused
 *   (`recordInteraction`): score = (accepted + 1) / (accepted + refused + 2).
 * - Violations demote at once: `violationThreshold` refusals within `violationWindowMs`
 *   put a principal (or a peer mesh) back to tier 4 — except a human of this mesh at
 *   tier 1–2 (the architect among them), who is never demoted automatically: a refusal
 *   charged to them may be someone else's doing (a reposted delegation, a squatted Yjs
 *   client id), and demoting them locks the mesh's own people out. They are flagged
 *   instead (`flagged`, a `trust.flagged` audit row and a `trust.flagged` warning in the
 *   log) for a person to look at; a signed tier decision (`promote`) clears the flag.
 * - Promotion (any tier change by a person) is only a local human's signed act: a
 *   `trust/promote` invocation with a reason, verified by the authority's chain
 *   verifier (`promote`).
 * - Every tier change and every refusal lands in the audit log in the same atomic batch
 *   as the record (accepted interactions are counted, not audited, unless
 *   `auditAccepted`).
 *
 * Stored in the `trust` sublevel: `1/principal/<did>` and `1/mesh/<did>` → TrustRecord,
 * mirrored in memory; writes are serialized.
 */
import type { AuditLog } from '../../audit/index.ts'
import { BadRequestError, MeshError } from '../../errors.ts'
import { type Logger, silentLogger } from '../../log.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../../store/index.ts'
import type { Tier } from './capabilities.ts'
import type { AuthorityFailure } from './failure.ts'
import type { Result } from './result.ts'

export type TrustScope = 'principal' | 'mesh'
export type Interaction = 'accepted' | 'refused'

export interface TrustRecord {
  did: string
  scope: TrustScope
  /** A member of this mesh (enrolled here), as opposed to a foreign principal or a peer mesh. */
  local: boolean
  kind?: 'human' | 'agent'
  role?: string
  /** The home mesh of a principal, when known. */
  mesh?: string
  tier: Tier
  accepted: number
  refused: number
  score: number
  /** ms timestamps of refusals within the violation window. */
  recentRefusals: number[]
  lastReason?: string
  lastInteractionAt?: string
  tierChangedAt?: string
  tierReason?: string
  tierChangedBy?: string
  /**
   * A human of this mesh at tier 1–2 whose refusals crossed the violation threshold:
   * flagged, not demoted. Cleared by a signed tier decision.
   */
  flagged?: { at: string; reason: string; count: number }
  /** A former member of this mesh, removed: every chain through it is refused while it stays removed. */
  removed?: { at: string; by: string }
}

export interface TrustStoreInit {
  store: MeshStore
  audit: Pick<AuditLog, 'append'>
  /** This mesh's did (tier 1 by construction). */
  meshDid: string
  /** Refusals within the window that demote at once; default 5. */
  violationThreshold?: number
  /** default 600 000 ms */
  violationWindowMs?: number
  /** Also write an audit row for every accepted interaction; default false. */
  auditAccepted?: boolean
  /** default `Date.now` */
  now?: () => number
  /** Where `trust.flagged` and `trust.demoted` are told; default silent. */
  logger?: Logger
}

/** What `promote` needs from the authority: a verified `trust/promote` invocation. */
export type PromotionVerifier = (
  token: string,
  subject: string,
  options: { credentials?: string[]; presentation?: string; now?: number },
) => Promise<
  Result<
    { issuer: string; capability: { nb: Record<string, unknown> }; invocation: string },
    AuthorityFailure
  >
>

export class TrustStore {
  readonly #c: Pick<TrustStoreInit, 'store' | 'audit' | 'meshDid'>
  readonly #sub: Sublevel<TrustRecord>
  readonly #violations: { threshold: number; windowMs: number; auditAccepted: boolean }
  readonly #now: () => number
  readonly #log: Logger
  readonly #records = new Map<string, TrustRecord>()
  #writes: Promise<unknown> = Promise.resolve()
  #opened = false

  constructor(init: TrustStoreInit) {
    this.#c = init
    this.#sub = init.store.sublevel<TrustRecord>('trust')
    this.#violations = {
      threshold: init.violationThreshold ?? 5,
      windowMs: init.violationWindowMs ?? 600_000,
      auditAccepted: init.auditAccepted ?? false,
    }
    this.#now = init.now ?? Date.now
    this.#log = (init.logger ?? silentLogger()).child({ area: 'trust' })
  }

  async open(): Promise<void> {
    if (this.#opened) return
    for await (const value of this.#sub.values({ gte: '1/', lt: '1/~' })) {
      this.#records.set(key(value.scope, value.did), value)
    }
    this.#opened = true
  }

  /** The record of a principal (or, with scope 'mesh', of a peer mesh). */
  get(did: string, scope: TrustScope = 'principal'): TrustRecord | undefined {
    const record = this.#records.get(key(scope, did))
    return record === undefined ? undefined : structuredClone(record)
  }

  /** Every record, principals then meshes, for `/api/trust`. */
  list(): TrustRecord[] {
    return [...this.#records.values()]
      .sort((a, b) => (a.scope === b.scope ? a.did.localeCompare(b.did) : a.scope === 'principal' ? -1 : 1))
      .map((r) => structuredClone(r))
  }

  /** This mesh's tier of `did`: 1 for the mesh key, the stored tier, else 4. */
  tierOf(did: string): Tier {
    if (did === this.#c.meshDid) return 1
    return this.#records.get(key('principal', did))?.tier ?? 4
  }

  /** Whether `did` is a removed member of this mesh (members: SPEC §8). */
  isRemoved(did: string): boolean {
    return this.#records.get(key('principal', did))?.removed !== undefined
  }

  /** Takes a member out of this mesh: no longer local, tier 4, and marked removed (audited). */
  removeLocal(did: string, options: { actor: string }): Promise<TrustRecord> {
    return this.#serialized(async () => {
      const before = this.#records.get(key('principal', did))
      const at = new Date(this.#now()).toISOString()
      const record: TrustRecord = {
        ...(before ?? fresh(did, 'principal')),
        local: false,
        tier: 4,
        tierChangedAt: at,
        tierReason: 'removed',
        tierChangedBy: options.actor,
        removed: { at, by: options.actor },
      }
      await this.#write(record, {
        action: 'trust.removed',
        actor: options.actor,
        subject: did,
        details: { from: before?.tier ?? null },
      })
      return structuredClone(record)
    })
  }

  isLocal(did: string): boolean {
    return did === this.#c.meshDid || this.#records.get(key('principal', did))?.local === true
  }

  /** Enrolls a member of this mesh with the tier this mesh gives it (the architect: 1). */
  enrollLocal(
    did: string,
    member: { kind: 'human' | 'agent'; role: string; tier: Tier },
    options: { actor?: string; reason?: string } = {},
  ): Promise<TrustRecord> {
    return this.#serialized(async () => {
      const before = this.#records.get(key('principal', did))
      const record: TrustRecord = {
        ...(before ?? fresh(did, 'principal')),
        local: true,
        kind: member.kind,
        role: member.role,
        mesh: this.#c.meshDid,
        tier: member.tier,
        tierChangedAt: new Date(this.#now()).toISOString(),
        tierReason: options.reason ?? 'enrolled',
        ...(options.actor === undefined ? {} : { tierChangedBy: options.actor }),
      }
      delete record.removed
      if (
        before?.local &&
        before.tier === record.tier &&
        before.kind === record.kind &&
        before.role === record.role
      ) {
        return structuredClone(before)
      }
      await this.#write(record, {
        action: 'trust.enrolled',
        ...(options.actor === undefined ? {} : { actor: options.actor }),
        subject: did,
        details: { kind: member.kind, role: member.role, tier: member.tier, from: before?.tier ?? null },
      })
      return structuredClone(record)
    })
  }

  /**
   * Records what this mesh did with a principal's request (and, with `mesh`, counts it
   * for its peer mesh too). Refusals past the threshold demote at once to tier 4.
   */
  recordInteraction(
    did: string,
    outcome: Interaction,
    reason: string,
    options: { mesh?: string; scope?: TrustScope } = {},
  ): Promise<TrustRecord> {
    if (outcome !== 'accepted' && outcome !== 'refused')
      throw new BadRequestError('outcome is accepted or refused')
    return this.#serialized(async () => {
      const scope = options.scope ?? 'principal'
      const now = this.#now()
      const updated: TrustRecord[] = []
      const audits: { action: string; subject: string; details: Record<string, unknown> }[] = []
      const warnings: { event: string; did: string; tier: Tier; reason: string }[] = []
      const targets: [TrustScope, string][] = [[scope, did]]
      if (options.mesh !== undefined && options.mesh !== this.#c.meshDid && scope === 'principal') {
        targets.push(['mesh', options.mesh])
      }
      for (const [s, d] of targets) {
        const before = this.#records.get(key(s, d))
        const record: TrustRecord = structuredClone(before ?? fresh(d, s))
        if (s === 'principal' && options.mesh !== undefined && record.mesh === undefined)
          record.mesh = options.mesh
        record.lastInteractionAt = new Date(now).toISOString()
        record.lastReason = reason.slice(0, 256)
        if (outcome === 'accepted') {
          record.accepted++
        } else {
          record.refused++
          record.recentRefusals = [
            ...record.recentRefusals.filter((t) => t > now - this.#violations.windowMs),
            now,
          ].slice(-this.#violations.threshold)
          audits.push({
            action: 'trust.refused',
            subject: d,
            details: { scope: s, reason: record.lastReason },
          })
          const violated = record.recentRefusals.length >= this.#violations.threshold
          if (violated && s === 'principal' && isProtected(record)) {
            const refusals = record.recentRefusals.length
            record.flagged = {
              at: new Date(now).toISOString(),
              reason: `${refusals} refusals within ${this.#violations.windowMs / 1000} s (last: ${record.lastReason})`,
              count: (record.flagged?.count ?? 0) + 1,
            }
            // The next flag takes another full threshold of refusals: no row per refusal.
            record.recentRefusals = []
            audits.splice(audits.length - 1, 0, {
              action: 'trust.flagged',
              subject: d,
              details: { tier: record.tier, reason: record.flagged.reason, automatic: true },
            })
            warnings.push({
              event: 'trust.flagged',
              did: d,
              tier: record.tier,
              reason: record.flagged.reason,
            })
          } else if (violated && record.tier < 4 && d !== this.#c.meshDid) {
            // the demotion row goes first: it is the one written in the record's batch
            audits.splice(audits.length - 1, 0, {
              action: 'trust.demoted',
              subject: d,
              details: {
                scope: s,
                from: record.tier,
                to: 4,
                reason: `${record.recentRefusals.length} refusals within ${this.#violations.windowMs / 1000} s`,
                automatic: true,
              },
            })
            warnings.push({ event: 'trust.demoted', did: d, tier: record.tier, reason: 'violations' })
            record.tier = 4
            record.tierChangedAt = new Date(now).toISOString()
            record.tierReason = 'violations'
            delete record.tierChangedBy
          }
        }
        record.score = score(record)
        updated.push(record)
      }
      if (outcome === 'accepted' && this.#violations.auditAccepted) {
        audits.push({ action: 'trust.accepted', subject: did, details: { reason: reason.slice(0, 256) } })
      }
      await this.#writeMany(updated, audits)
      for (const w of warnings) {
        this.#log.warn(
          { event: w.event, did: w.did, tier: w.tier, reason: w.reason },
          w.event === 'trust.flagged'
            ? 'a human of this mesh keeps being refused: flagged, not demoted'
            : 'demoted to tier 4 after violations',
        )
      }
      return structuredClone(updated[0] as TrustRecord)
    })
  }

  /**
   * Sets a tier on the word of a local human: `token` is a `trust/promote` invocation
   * (nb: subject, tier, reason — all required) verified by `verify` (the authority).
   * Refusals are thrown as MeshErrors carrying the failed proof in details.
   */
  async promote(
    token: string,
    subject: string,
    verify: PromotionVerifier,
    options: { credentials?: string[]; presentation?: string; now?: number; scope?: TrustScope } = {},
  ): Promise<TrustRecord> {
    const verdict = await verify(token, subject, options)
    if (verdict.error !== undefined) {
      throw new MeshError(verdict.error.code, verdict.error.message, {
        proof: verdict.error.proof,
        ...verdict.error.details,
      })
    }
    const { nb } = verdict.ok.capability
    const tier = nb.tier
    const reason = nb.reason
    if (!(tier === 2 || tier === 3 || tier === 4) || typeof reason !== 'string' || reason.trim() === '') {
      throw new BadRequestError('a trust/promote invocation names the tier (2–4) and a reason', {
        tier: tier ?? null,
      })
    }
    const scope = options.scope ?? 'principal'
    return this.#serialized(async () => {
      const before = this.#records.get(key(scope, subject))
      const record: TrustRecord = structuredClone(before ?? fresh(subject, scope))
      const from = record.tier
      record.tier = tier
      record.tierChangedAt = new Date(this.#now()).toISOString()
      record.tierReason = reason
      record.tierChangedBy = verdict.ok.issuer
      record.recentRefusals = []
      delete record.flagged
      await this.#write(record, {
        action: tier < from ? 'trust.promoted' : tier > from ? 'trust.demoted' : 'trust.confirmed',
        actor: verdict.ok.issuer,
        subject,
        details: { scope, from, to: tier, reason, ucan: verdict.ok.invocation },
      })
      return structuredClone(record)
    })
  }

  // accountability across meshes (SPEC §11): a mesh caught equivocating
  /**
   * Sets `did` (in `scope`) to tier 4 at once — an automatic decision, like a demotion for
   * violations, so no human's token: one `trust.demoted` row. Never this mesh itself.
   */
  demote(did: string, scope: TrustScope, reason: string): Promise<TrustRecord> {
    if (did === this.#c.meshDid) throw new BadRequestError('this mesh is never demoted')
    return this.#serialized(async () => {
      const record: TrustRecord = structuredClone(this.#records.get(key(scope, did)) ?? fresh(did, scope))
      const from = record.tier
      record.tier = 4
      record.tierChangedAt = new Date(this.#now()).toISOString()
      record.tierReason = reason.slice(0, 256)
      delete record.tierChangedBy
      await this.#write(record, {
        action: 'trust.demoted',
        subject: did,
        details: { scope, from, to: 4, reason: record.tierReason, automatic: true },
      })
      return structuredClone(record)
    })
  }

  async #write(
    record: TrustRecord,
    audit: { action: string; actor?: string; subject: string; details: Record<string, unknown> },
  ): Promise<void> {
    await this.#writeMany([record], [audit])
  }

  async #writeMany(
    records: TrustRecord[],
    audits: { action: string; actor?: string; subject: string; details: Record<string, unknown> }[],
  ): Promise<void> {
    const ops = records.map(
      (r) => ({ type: 'put', sublevel: this.#sub, key: key(r.scope, r.did), value: r }) as StoreOperation,
    )
    if (audits.length === 0) {
      await this.#c.store.batch(ops)
    } else {
      // The records land with the first row; any further rows follow it.
      const [first, ...rest] = audits
      await this.#c.audit.append(first as (typeof audits)[number], { with: ops })
      for (const row of rest) await this.#c.audit.append(row)
    }
    for (const r of records) this.#records.set(key(r.scope, r.did), r)
  }

  #serialized<T>(write: () => Promise<T>): Promise<T> {
    const run = this.#writes.then(write)
    this.#writes = run.catch(() => undefined)
    return run
  }
}

function key(scope: TrustScope, did: string): string {
  return `1/${scope}/${did}`
}

function fresh(did: string, scope: TrustScope): TrustRecord {
  return { did, scope, local: false, tier: 4, accepted: 0, refused: 0, score: 0.5, recentRefusals: [] }
}

/** A human of this mesh at tier 1–2: flagged, never demoted automatically. */
function isProtected(record: TrustRecord): boolean {
  return record.local && record.kind === 'human' && record.tier <= 2
}

function score(record: TrustRecord): number {
  return Math.round(((record.accepted + 1) / (record.accepted + record.refused + 2)) * 1000) / 1000
}
