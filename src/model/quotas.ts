import { BadRequestError, RateLimitedError } from '../errors.ts'
import type { MeshStore, Sublevel } from '../store/index.ts'
import type { ModelUsage } from './upstream.ts'

export type Tier = 1 | 2 | 3 | 4

/** One principal's (or one tier's together) limits; a limit left out is none. */
export interface QuotaLimits {
  requestsPerMinute?: number
  requestsPerDay?: number
  tokensPerMinute?: number
  tokensPerDay?: number
}

/**
 * Who may spend what (SPEC §13): each principal its tier's limits (`tiers`) or its own
 * (`principals`, by did), and all principals of a tier together at most `tierTotals`.
 */
export interface QuotaPolicy {
  tiers: Record<Tier, QuotaLimits>
  tierTotals: Partial<Record<Tier, QuotaLimits>>
  principals: Record<string, QuotaLimits>
  /** Completion tokens reserved for a call that names no `max_tokens`; default 1 024. */
  reserveTokens: number
}

/** The defaults per tier (per principal), and for all tier-4 principals together. */
export const DEFAULT_QUOTA_POLICY: QuotaPolicy = {
  tiers: {
    1: {
      requestsPerMinute: 600,
      requestsPerDay: 100_000,
      tokensPerMinute: 1_000_000,
      tokensPerDay: 20_000_000,
    },
    2: { requestsPerMinute: 120, requestsPerDay: 20_000, tokensPerMinute: 200_000, tokensPerDay: 5_000_000 },
    3: { requestsPerMinute: 60, requestsPerDay: 5_000, tokensPerMinute: 100_000, tokensPerDay: 1_000_000 },
    4: { requestsPerMinute: 20, requestsPerDay: 1_000, tokensPerMinute: 20_000, tokensPerDay: 200_000 },
  },
  tierTotals: {
    4: { requestsPerMinute: 200, requestsPerDay: 20_000, tokensPerMinute: 200_000, tokensPerDay: 2_000_000 },
  },
  principals: {},
  reserveTokens: 1024,
}

/** What a node's options may change of the default policy. */
export interface QuotaOverrides {
  tiers?: Partial<Record<Tier, QuotaLimits>>
  tierTotals?: Partial<Record<Tier, QuotaLimits>>
  principals?: Record<string, QuotaLimits>
  reserveTokens?: number
}

/** A policy from overrides: each tier's and total's limits replace the default's field by field. */
export function quotaPolicy(overrides: QuotaOverrides = {}): QuotaPolicy {
  const base = DEFAULT_QUOTA_POLICY
  const tiers = { ...base.tiers }
  for (const tier of [1, 2, 3, 4] as const) tiers[tier] = { ...base.tiers[tier], ...overrides.tiers?.[tier] }
  const tierTotals: Partial<Record<Tier, QuotaLimits>> = { ...base.tierTotals }
  for (const tier of [1, 2, 3, 4] as const) {
    const limits = overrides.tierTotals?.[tier]
    if (limits !== undefined) tierTotals[tier] = { ...base.tierTotals[tier], ...limits }
  }
  return {
    tiers,
    tierTotals,
    principals: { ...overrides.principals },
    reserveTokens: overrides.reserveTokens ?? base.reserveTokens,
  }
}

/** What a principal spent, in total and in the current minute and day. */
export interface UsageRecord {
  principal: string
  tier: Tier
  requests: number
  refused: number
  failed: number
  promptTokens: number
  completionTokens: number
  totalTokens: number
  /** The current UTC minute's and day's counts (what the quota counts). */
  minute: { requests: number; tokens: number }
  day: { requests: number; tokens: number }
  lastAt: string | null
}

/** The fixed windows a bucket counts in: this UTC minute and this UTC day. */
interface Window {
  minute: number
  day: number
  requestsMinute: number
  requestsDay: number
  tokensMinute: number
  tokensDay: number
}

interface Stored extends Omit<UsageRecord, 'minute' | 'day'> {
  window: Window
}

const MINUTE = 60_000
const DAY = 86_400_000

function emptyWindow(now: number): Window {
  const minute = Math.floor(now / MINUTE)
  return {
    minute,
    day: Math.floor(now / DAY),
    requestsMinute: 0,
    requestsDay: 0,
    tokensMinute: 0,
    tokensDay: 0,
  }
}

/** The window rolled to `now`: counts of a past minute or day start from zero. */
function roll(window: Window, now: number): Window {
  const minute = Math.floor(now / MINUTE)
  const day = Math.floor(now / DAY)
  const sameDay = window.day === day
  return {
    minute,
    day,
    requestsMinute: window.minute === minute ? window.requestsMinute : 0,
    tokensMinute: window.minute === minute ? window.tokensMinute : 0,
    requestsDay: sameDay ? window.requestsDay : 0,
    tokensDay: sameDay ? window.tokensDay : 0,
  }
}

/** A spend reserved before the upstream call, settled (or released) after it. */
export interface Reservation {
  principal: string
  tier: Tier
  tokens: number
  at: number
}

/**
 * The proxy's quotas and usage book. `reserve` checks and counts a call in one
 * synchronous step — the request, and a token estimate (the prompt's size and its
 * `max_tokens`) — against the principal's bucket and its tier's total, so that no
 * number of concurrent callers gets past a limit; `settle` replaces the estimate by the
 * upstream's `usage`. Windows are fixed UTC minutes and days; a refusal is
 * MESH_RATE_LIMITED with `retryAfterMs` (→ `Retry-After`) until the window that is full
 * turns. Each principal's totals and windows are kept in the store (`model-usage`), so a
 * restart forgets nothing.
 */
export class QuotaBook {
  readonly #policy: QuotaPolicy
  readonly #now: () => number
  readonly #store: Sublevel<Stored> | undefined
  readonly #principals = new Map<string, Stored>()
  readonly #tiers = new Map<Tier, Window>()

  constructor(init: { policy?: QuotaPolicy; store?: MeshStore; now?: () => number } = {}) {
    this.#policy = init.policy ?? DEFAULT_QUOTA_POLICY
    this.#now = init.now ?? Date.now
    this.#store = init.store?.sublevel<Stored>('model-usage')
  }

  get policy(): QuotaPolicy {
    return this.#policy
  }

  /** Loads the kept usage (call once, before the first call). */
  async load(): Promise<void> {
    if (this.#store === undefined) return
    for await (const [did, stored] of this.#store.iterator()) {
      this.#principals.set(did, stored)
      const tier = this.#tierWindow(stored.tier)
      const window = roll(stored.window, this.#now())
      tier.requestsDay += window.requestsDay
      tier.tokensDay += window.tokensDay
      tier.requestsMinute += window.requestsMinute
      tier.tokensMinute += window.tokensMinute
    }
  }

  /** The limits that hold for one principal. */
  limitsOf(principal: string, tier: Tier): QuotaLimits {
    return this.#policy.principals[principal] ?? this.#policy.tiers[tier]
  }

  /** Checks and counts one call of `tokens` estimated tokens, or throws MESH_RATE_LIMITED (counted as refused). */
  reserve(principal: string, tier: Tier, tokens: number): Reservation {
    const now = this.#now()
    const record = this.#record(principal, tier, now)
    record.window = roll(record.window, now)
    const tierWindow = this.#tierWindow(tier, now)
    const own = this.limitsOf(principal, tier)
    const ownTokens = Math.min(own.tokensPerMinute ?? Infinity, own.tokensPerDay ?? Infinity)
    if (tokens > ownTokens) {
      throw new BadRequestError(
        `this call may use ${tokens} tokens, more than the ${ownTokens} your quota allows`,
        {
          reason: 'max_tokens',
          tokens,
          limit: ownTokens,
        },
      )
    }
    const full =
      over(record.window, own, tokens, now, 'principal') ??
      over(tierWindow, this.#policy.tierTotals[tier] ?? {}, tokens, now, `tier ${tier}`)
    if (full !== undefined) {
      record.refused++
      record.lastAt = new Date(now).toISOString()
      this.#persist(record)
      throw new RateLimitedError(`the model quota is spent: ${full.what}`, {
        reason: 'quota',
        quota: full.what,
        limit: full.limit,
        retryAfterMs: full.retryAfterMs,
      })
    }
    for (const window of [record.window, tierWindow]) {
      window.requestsMinute++
      window.requestsDay++
      window.tokensMinute += tokens
      window.tokensDay += tokens
    }
    return { principal, tier, tokens, at: now }
  }

  /**
   * Ends a reservation: the estimate is replaced by what the upstream reported (`usage`),
   * or by the estimate itself when it reported nothing; `failed` gives the request back
   * and charges nothing (the upstream call never produced tokens).
   */
  settle(reservation: Reservation, outcome: { usage?: ModelUsage; failed?: boolean }): UsageRecord {
    const now = this.#now()
    const record = this.#record(reservation.principal, reservation.tier, now)
    const charged = outcome.failed === true ? 0 : (outcome.usage?.totalTokens ?? reservation.tokens)
    const requests = outcome.failed === true ? 0 : 1
    const windows = [record.window, this.#tierWindow(reservation.tier, now)]
    for (const window of windows) {
      // the reservation is counted in the windows it was made in; in a window since turned,
      // only what the call used is counted
      const sameMinute = window.minute === Math.floor(reservation.at / MINUTE)
      const sameDay = window.day === Math.floor(reservation.at / DAY)
      window.tokensMinute += sameMinute ? charged - reservation.tokens : charged
      window.tokensDay += sameDay ? charged - reservation.tokens : charged
      if (sameMinute) window.requestsMinute -= 1 - requests
      if (sameDay) window.requestsDay -= 1 - requests
    }
    if (outcome.failed === true) record.failed++
    else {
      record.requests++
      record.promptTokens += outcome.usage?.promptTokens ?? 0
      record.completionTokens += outcome.usage?.completionTokens ?? 0
      record.totalTokens += charged
    }
    record.lastAt = new Date(now).toISOString()
    this.#persist(record)
    return viewOf(record, now)
  }

  /** Every principal's usage, or one's. */
  usage(principal?: string): UsageRecord[] {
    const now = this.#now()
    const records =
      principal === undefined
        ? [...this.#principals.values()]
        : [this.#principals.get(principal)].filter((r) => r !== undefined)
    return records.map((record) => viewOf(record, now)).sort((a, b) => a.principal.localeCompare(b.principal))
  }

  /** Waits for every write of the usage book made so far. */
  async flush(): Promise<void> {
    this.#writeDirty()
    await this.#writes
  }

  #writes: Promise<unknown> = Promise.resolve()
  readonly #dirty = new Set<Stored>()

  // Records changed within one turn of the event loop are written together, in one batch,
  // each as it is when the batch is made; batches run one at a time, in order.
  #persist(record: Stored): void {
    if (this.#store === undefined) return
    if (this.#dirty.size === 0) setImmediate(() => this.#writeDirty())
    this.#dirty.add(record)
  }

  #writeDirty(): void {
    const store = this.#store
    if (store === undefined || this.#dirty.size === 0) return
    const operations = [...this.#dirty].map((record) => ({
      type: 'put' as const,
      key: record.principal,
      value: structuredClone(record),
    }))
    this.#dirty.clear()
    this.#writes = this.#writes.then(() => store.batch(operations)).catch(() => {})
  }

  #record(principal: string, tier: Tier, now: number): Stored {
    let record = this.#principals.get(principal)
    if (record === undefined) {
      record = {
        principal,
        tier,
        requests: 0,
        refused: 0,
        failed: 0,
        promptTokens: 0,
        completionTokens: 0,
        totalTokens: 0,
        lastAt: null,
        window: emptyWindow(now),
      }
      this.#principals.set(principal, record)
    }
    record.tier = tier
    return record
  }

  #tierWindow(tier: Tier, now = this.#now()): Window {
    const window = roll(this.#tiers.get(tier) ?? emptyWindow(now), now)
    this.#tiers.set(tier, window)
    return window
  }
}

function viewOf(record: Stored, now: number): UsageRecord {
  const { window: stored, ...totals } = record
  const window = roll(stored, now)
  return {
    ...totals,
    minute: { requests: window.requestsMinute, tokens: window.tokensMinute },
    day: { requests: window.requestsDay, tokens: window.tokensDay },
  }
}

/** The first limit a call of `tokens` would pass, and how long until its window turns. */
function over(
  window: Window,
  limits: QuotaLimits,
  tokens: number,
  now: number,
  who: string,
): { what: string; limit: number; retryAfterMs: number } | undefined {
  const untilMinute = (window.minute + 1) * MINUTE - now
  const untilDay = (window.day + 1) * DAY - now
  const checks: [number | undefined, number, string, number][] = [
    [limits.requestsPerMinute, window.requestsMinute + 1, 'requests per minute', untilMinute],
    [limits.requestsPerDay, window.requestsDay + 1, 'requests per day', untilDay],
    [limits.tokensPerMinute, window.tokensMinute + tokens, 'tokens per minute', untilMinute],
    [limits.tokensPerDay, window.tokensDay + tokens, 'tokens per day', untilDay],
  ]
  for (const [limit, wanted, what, retryAfterMs] of checks) {
    if (limit !== undefined && wanted > limit) return { what: `${who} ${what}`, limit, retryAfterMs }
  }
  return undefined
}

const LIMIT_FIELDS = ['requestsPerMinute', 'requestsPerDay', 'tokensPerMinute', 'tokensPerDay'] as const

function checkLimits(value: unknown, where: string): QuotaLimits {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BadRequestError(`${where}: limits are an object`, { reason: 'quotas', at: where })
  }
  for (const [field, limit] of Object.entries(value)) {
    if (!(LIMIT_FIELDS as readonly string[]).includes(field)) {
      throw new BadRequestError(`${where}.${field}: not a limit (${LIMIT_FIELDS.join(', ')})`, {
        reason: 'quotas',
        at: `${where}.${field}`,
      })
    }
    if (!(typeof limit === 'number' && Number.isInteger(limit) && limit >= 0)) {
      throw new BadRequestError(`${where}.${field}: a whole number ≥ 0`, {
        reason: 'quotas',
        at: `${where}.${field}`,
      })
    }
  }
  return value as QuotaLimits
}

function checkTiers(value: unknown, where: string): Partial<Record<Tier, QuotaLimits>> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BadRequestError(`${where}: an object by tier (1 to 4)`, { reason: 'quotas', at: where })
  }
  for (const [tier, limits] of Object.entries(value)) {
    if (!['1', '2', '3', '4'].includes(tier)) {
      throw new BadRequestError(`${where}.${tier}: tiers are 1 to 4`, {
        reason: 'quotas',
        at: `${where}.${tier}`,
      })
    }
    checkLimits(limits, `${where}.${tier}`)
  }
  return value as Partial<Record<Tier, QuotaLimits>>
}

/**
 * A quota policy file's content (`mesh start --model-quotas FILE`), checked:
 * `{tiers?: {"1".."4": limits}, tierTotals?: {…}, principals?: {did: limits}, reserveTokens?}`,
 * limits being `{requestsPerMinute?, requestsPerDay?, tokensPerMinute?, tokensPerDay?}`.
 */
export function checkQuotaOverrides(value: unknown): QuotaOverrides {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BadRequestError('the quota policy is a JSON object', { reason: 'quotas' })
  }
  const input = value as Record<string, unknown>
  for (const key of Object.keys(input)) {
    if (!['tiers', 'tierTotals', 'principals', 'reserveTokens'].includes(key)) {
      throw new BadRequestError(`${key}: not part of a quota policy`, { reason: 'quotas', at: key })
    }
  }
  const out: QuotaOverrides = {}
  if (input.tiers !== undefined) out.tiers = checkTiers(input.tiers, 'tiers')
  if (input.tierTotals !== undefined) out.tierTotals = checkTiers(input.tierTotals, 'tierTotals')
  if (input.principals !== undefined) {
    const principals = input.principals
    if (principals === null || typeof principals !== 'object' || Array.isArray(principals)) {
      throw new BadRequestError('principals: an object by did', { reason: 'quotas', at: 'principals' })
    }
    out.principals = {}
    for (const [did, limits] of Object.entries(principals)) {
      if (!/^did:[a-z0-9]+:[A-Za-z0-9._%:-]+$/.test(did)) {
        throw new BadRequestError(`principals: ${did} is not a did`, { reason: 'quotas', at: 'principals' })
      }
      out.principals[did] = checkLimits(limits, `principals.${did}`)
    }
  }
  if (input.reserveTokens !== undefined) {
    const reserve = input.reserveTokens
    if (!(typeof reserve === 'number' && Number.isInteger(reserve) && reserve >= 1)) {
      throw new BadRequestError('reserveTokens: a whole number ≥ 1', {
        reason: 'quotas',
        at: 'reserveTokens',
      })
    }
    out.reserveTokens = reserve
  }
  return out
}
