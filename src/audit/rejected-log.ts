import type { Registry } from 'prom-client'
import { BadRequestError, type MeshError, type MeshErrorCode } from '../errors.ts'
import { Counter } from '../kernel/prom.ts' // issue 15: not prom-client's index
import { type Logger, silentLogger } from '../log.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'

/**
 * Every refused federation event or request, with its reason (SPEC §3
 * `GET /api/federation/rejected`). Bounded: the newest `maxEntries` are kept.
 *
 * Store layout (sublevel `rejected`): `log/1/<seq, 16 digits>` → entry. Sequence
 * numbers are contiguous and the oldest is dropped first, so the count is
 * `last − first + 1` and trimming is one delete per record.
 */
export interface RejectedInput {
  /** The peer mesh that sent it, when known. */
  peer?: string
  /** What was refused: 'envelope', 'connect.request', 'room.update', … */
  kind: string
  code: MeshErrorCode
  /** Human-readable reason. */
  reason: string
  details?: Record<string, unknown>
}

export interface RejectedEntry {
  /** Also the paging cursor. */
  id: string
  /** When it was refused, ISO 8601. */
  at: string
  peer: string | null
  kind: string
  code: MeshErrorCode
  reason: string
  details: Record<string, unknown>
}

export interface RejectedPage {
  entries: RejectedEntry[]
  /** Pass as `after` for the next (older) page; null when there is none. */
  nextCursor: string | null
}

export interface ListRejectedOptions {
  /** A cursor: list entries older than this one. */
  after?: string
  /** 1..200; default 50. */
  limit?: number
  peer?: string
  code?: string
}

export const REJECTED_LIMITS = {
  maxEntries: 10_000,
  maxReasonLength: 512,
  maxDetailsBytes: 2048,
  maxKindLength: 64,
  defaultPageSize: 50,
  maxPageSize: 200,
} as const

export interface RejectedLogInit {
  store: MeshStore
  /** default 10 000 */
  maxEntries?: number
  /** When given, counts refusals as `mesh_federation_rejected_total{code}`. */
  metrics?: Registry
  /** Each refusal is also logged, under the greppable names of the federation docs. */
  logger?: Logger
  /** default `Date.now` */
  now?: () => number
}

const PREFIX = 'log/1/'
const SEQ_DIGITS = 16

// Log names operators grep for (seed 001 "Where to look"); the rest share one name.
const LOG_EVENT: Partial<Record<MeshErrorCode, string>> = {
  MESH_SIGNATURE_MISMATCH: 'federation.signature_verify_failed',
  MESH_POLICY_REJECTED: 'federation.policy_rejected',
  MESH_PEER_UNKNOWN: 'federation.policy_rejected',
}

export class RejectedLog {
  readonly #store: MeshStore
  readonly #sub: Sublevel<RejectedEntry>
  readonly #max: number
  readonly #now: () => number
  readonly #log: Logger
  readonly #counter: Counter<'code'> | undefined
  #range: Promise<{ first: number; last: number }> | undefined
  #writing: Promise<unknown> = Promise.resolve()

  constructor(init: RejectedLogInit) {
    this.#store = init.store
    this.#sub = init.store.sublevel<RejectedEntry>('rejected')
    this.#max = init.maxEntries ?? REJECTED_LIMITS.maxEntries
    this.#now = init.now ?? Date.now
    this.#log = init.logger ?? silentLogger()
    this.#counter =
      init.metrics === undefined
        ? undefined
        : new Counter({
            name: 'mesh_federation_rejected_total',
            help: 'Refused federation events and requests, by error code',
            labelNames: ['code'] as const,
            registers: [init.metrics],
          })
  }

  /** Records a refusal; `fromError` builds the input from a thrown MeshError. */
  async record(input: RejectedInput): Promise<RejectedEntry> {
    const run = this.#writing.then(() => this.#append(input))
    // The chain only orders writes; each caller gets its own result or error.
    this.#writing = run.catch(() => {})
    return run
  }

  /** Newest first; `after` is the `id` (or `nextCursor`) of the last entry already seen. */
  async list(options: ListRejectedOptions = {}): Promise<RejectedPage> {
    const limit = options.limit ?? REJECTED_LIMITS.defaultPageSize
    if (!Number.isInteger(limit) || limit < 1 || limit > REJECTED_LIMITS.maxPageSize) {
      throw new BadRequestError(`limit must be 1..${REJECTED_LIMITS.maxPageSize}`, { limit })
    }
    if (options.after !== undefined && !/^[0-9]{16}$/.test(options.after)) {
      throw new BadRequestError('invalid cursor', { after: options.after })
    }
    const entries: RejectedEntry[] = []
    let more = false
    const range = { gte: PREFIX, lt: options.after === undefined ? `${PREFIX}~` : PREFIX + options.after }
    for await (const entry of this.#sub.values({ ...range, reverse: true })) {
      if (options.peer !== undefined && entry.peer !== options.peer) continue
      if (options.code !== undefined && entry.code !== options.code) continue
      if (entries.length === limit) {
        more = true
        break
      }
      entries.push(entry)
    }
    return { entries, nextCursor: more ? (entries.at(-1)?.id ?? null) : null }
  }

  /** How many entries are kept now. */
  async size(): Promise<number> {
    const { first, last } = await this.#loadRange()
    return last - first + 1
  }

  async #append(input: RejectedInput): Promise<RejectedEntry> {
    const range = await this.#loadRange()
    const seq = range.last + 1
    const entry: RejectedEntry = {
      id: pad(seq),
      at: new Date(this.#now()).toISOString(),
      peer: input.peer ?? null,
      kind: input.kind.slice(0, REJECTED_LIMITS.maxKindLength),
      code: input.code,
      reason: input.reason.slice(0, REJECTED_LIMITS.maxReasonLength),
      details: boundedDetails(input.details ?? {}),
    }
    const ops: StoreOperation[] = [
      { type: 'put', sublevel: this.#sub, key: PREFIX + entry.id, value: entry } as StoreOperation,
    ]
    let first = range.first
    while (seq - first + 1 > this.#max) {
      ops.push({ type: 'del', sublevel: this.#sub, key: PREFIX + pad(first) } as StoreOperation)
      first++
    }
    await this.#store.batch(ops)
    range.first = first
    range.last = seq
    this.#counter?.inc({ code: entry.code })
    this.#log.warn(
      {
        event: LOG_EVENT[entry.code] ?? 'federation.rejected',
        peer: entry.peer,
        kind: entry.kind,
        code: entry.code,
        details: entry.details,
      },
      entry.reason,
    )
    return entry
  }

  #loadRange(): Promise<{ first: number; last: number }> {
    if (this.#range === undefined) {
      const loading = (async () => {
        let first: number | undefined
        let last: number | undefined
        for await (const key of this.#sub.keys({ gte: PREFIX, lt: `${PREFIX}~`, limit: 1 }))
          first = seqOf(key)
        for await (const key of this.#sub.keys({ gte: PREFIX, lt: `${PREFIX}~`, limit: 1, reverse: true })) {
          last = seqOf(key)
        }
        // Empty: first = last + 1, so that the count is 0.
        return first === undefined || last === undefined ? { first: 1, last: 0 } : { first, last }
      })()
      loading.catch(() => {
        if (this.#range === loading) this.#range = undefined
      })
      this.#range = loading
    }
    return this.#range
  }
}

/** The input for `record` from a refusal thrown by a verifier or the policy. */
export function rejectionFrom(err: MeshError, context: { peer?: string; kind: string }): RejectedInput {
  return { ...context, code: err.code, reason: err.message, details: err.details }
}

function seqOf(key: string): number {
  return Number(key.slice(PREFIX.length))
}

function pad(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0')
}

// Details come from what a peer sent; they are kept only while small.
function boundedDetails(details: Record<string, unknown>): Record<string, unknown> {
  let text: string | undefined
  try {
    text = JSON.stringify(details)
  } catch {
    return { truncated: true }
  }
  if (text === undefined) return {}
  if (Buffer.byteLength(text) <= REJECTED_LIMITS.maxDetailsBytes)
    return JSON.parse(text) as Record<string, unknown>
  return { truncated: true, preview: text.slice(0, 256) }
}
