import type { AbortOptions } from '@libp2p/interface'
import type { Counter, Registry as MetricsRegistry } from 'prom-client'
import { BadRequestError, ERROR_STATUS, isMeshError, type MeshErrorCode } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { MeshStore, Sublevel } from '../store/index.ts'
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  type HeartbeatContent,
  type HeartbeatStatus,
  signHeartbeat,
} from './heartbeat.ts'
import { MESH_STATUSES, type MeshStatus } from './mesh-list.ts'
import { outcomeCounter } from './metrics.ts'
import { computePow, MAX_POW_BITS } from './pow.ts'

// In the 'registry' sublevel, next to a served registry's own keys (`mesh/v1/…`).
const SEQ_KEY = 'client-seq/v1'
// The admission stamp of one key: found once, sent in every heartbeat after.
const powKey = (did: string): string => `client-pow/v1/${did}`

interface PowStamp {
  bits: number
  nonce: string
}

/** What the caller of a `HeartbeatClient` reports each time; identity, seq and ts are the client's. */
export type HeartbeatInfo = Omit<
  HeartbeatContent,
  'did' | 'peerId' | 'status' | 'seq' | 'ts' | 'rotations'
> & {
  /** Default 'online'; 'offline' is sent by the client alone, when it stops. */
  status?: 'online' | 'idle'
}

export interface HeartbeatClientInit {
  /** The mesh key: the heartbeat's did, peerId and signer. */
  key: Ed25519KeyPair
  /** Base URL of the registry, e.g. `http://127.0.0.1:7800`. */
  registryUrl: string
  /** The node's store; the last seq sent is kept in the 'registry' sublevel so it only grows. */
  store: MeshStore
  /** What to announce, asked before every heartbeat. */
  content: (options: AbortOptions) => HeartbeatInfo | Promise<HeartbeatInfo>
  logger?: Logger
  /** Counts heartbeats sent by outcome (`mesh_registry_client_heartbeats_total`), when given. */
  metrics?: MetricsRegistry
  /** Time between heartbeats; default 30 000 ms. */
  intervalMs?: number
  /** Timeout of one heartbeat request; default 10 000 ms. */
  requestTimeoutMs?: number
  /** Timeout of the final 'offline' heartbeat sent by `stop()`; default 2 000 ms. */
  stopTimeoutMs?: number
  /** The clock, in ms since the epoch; default `Date.now`. */
  now?: () => number
  /** The mesh's rotation chain (from its identity to `key`), sent in every heartbeat; default none. */
  rotations?: () => HeartbeatContent['rotations']
  /**
   * Most admission work done for a registry that asks for a stamp (pow.ts): a registry
   * asking for more leading zero bits than this is not joined (its refusal is reported).
   * Default 24 (≈16 M hashes, tens of seconds).
   */
  maxPowBits?: number
  /**
   * Whether the node can serve now; default always. While it cannot (its store fails),
   * heartbeats say 'offline' — never 'online' — so the registry does not send anyone to it.
   */
  healthy?: () => boolean
}

/** What one heartbeat attempt came to; failures are also logged and counted, never thrown. */
export type HeartbeatResult =
  | { ok: true; seq: number; status: MeshStatus }
  | { ok: false; seq?: number; code: MeshErrorCode | `HTTP_${number}`; message: string }

/**
 * Announces this mesh to a registry: a signed heartbeat at start, then one every
 * interval (the next is scheduled when the last has finished, so they never overlap),
 * and a last one with status 'offline' at stop so the registry need not wait for
 * three missed heartbeats. Failures are logged and counted, never thrown by the timer:
 * a registry that is down must not take the node with it.
 */
export class HeartbeatClient {
  readonly #init: HeartbeatClientInit
  readonly #url: string
  readonly #sublevel: Sublevel<number>
  readonly #stamps: Sublevel<PowStamp>
  readonly #maxPowBits: number
  readonly #log: Logger
  readonly #now: () => number
  readonly #intervalMs: number
  readonly #requestTimeoutMs: number
  readonly #stopTimeoutMs: number
  readonly #sent?: Counter<'outcome'>
  #shutdown?: AbortController
  #timer?: NodeJS.Timeout
  // Heartbeats go out one at a time, so they reach the registry in seq order.
  #sending: Promise<unknown> = Promise.resolve()
  #lastSeq?: number
  #stamp?: PowStamp | null
  #lastInfo?: HeartbeatInfo
  #healthy = false

  constructor(init: HeartbeatClientInit) {
    let url: URL
    try {
      url = new URL(init.registryUrl)
    } catch {
      throw new BadRequestError('registryUrl is not a URL', { registryUrl: init.registryUrl })
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new BadRequestError('registryUrl is http or https', { registryUrl: init.registryUrl })
    }
    this.#init = init
    this.#url = `${init.registryUrl.replace(/\/+$/, '')}/api/meshes/heartbeat`
    this.#sublevel = init.store.sublevel<number>('registry')
    this.#stamps = init.store.sublevel<PowStamp>('registry')
    this.#maxPowBits = Math.min(init.maxPowBits ?? 24, MAX_POW_BITS)
    this.#log = (init.logger ?? silentLogger()).child({ area: 'registry', registry: init.registryUrl })
    this.#now = init.now ?? Date.now
    this.#intervalMs = init.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS
    this.#requestTimeoutMs = init.requestTimeoutMs ?? 10_000
    this.#stopTimeoutMs = init.stopTimeoutMs ?? 2_000
    if (init.metrics !== undefined) {
      this.#sent = outcomeCounter(
        init.metrics,
        'mesh_registry_client_heartbeats_total',
        'Heartbeats sent to a registry, by outcome (accepted or the error code)',
      )
    }
  }

  /** Sends a heartbeat at once (in the background), then one every interval. */
  async start(_options: AbortOptions = {}): Promise<void> {
    if (this.#shutdown !== undefined) return
    this.#shutdown = new AbortController()
    // The first heartbeat goes out in the background: a slow registry must not delay the node's start.
    this.#schedule(0, this.#shutdown.signal)
  }

  /** Stops the timer, then sends a last heartbeat with status 'offline' (best effort, short timeout). */
  async stop(options: AbortOptions = {}): Promise<void> {
    const shutdown = this.#shutdown
    if (shutdown === undefined) return
    this.#shutdown = undefined
    clearTimeout(this.#timer)
    shutdown.abort()
    await this.#sending
    await this.#enqueue(() => this.#send('offline', this.#stopTimeoutMs, options))
  }

  /** Sends one heartbeat now (e.g. after the name or counts changed); resolves with the outcome, never rejects. */
  beat(options: AbortOptions = {}): Promise<HeartbeatResult> {
    return this.#enqueue(() => this.#send(undefined, this.#requestTimeoutMs, options))
  }

  #schedule(delayMs: number, signal: AbortSignal): void {
    this.#timer = setTimeout(() => {
      void this.beat({ signal }).finally(() => {
        if (!signal.aborted) this.#schedule(this.#intervalMs, signal)
      })
    }, delayMs)
    // The node's servers keep the process alive, not this timer.
    this.#timer.unref()
  }

  #enqueue(send: () => Promise<HeartbeatResult>): Promise<HeartbeatResult> {
    const run = this.#sending.then(send)
    this.#sending = run
    return run
  }

  /**
   * One heartbeat, start to finish; resolves with the outcome and never rejects. A
   * registry that does not know this key yet asks for an admission stamp: the client
   * finds one of the difficulty asked (once per key; kept in the store) and sends again.
   */
  async #send(
    override: 'offline' | undefined,
    timeoutMs: number,
    options: AbortOptions,
  ): Promise<HeartbeatResult> {
    const first = await this.#sendOnce(override, timeoutMs, options)
    const bits = first.ok ? undefined : first.powBits
    // Not for the last 'offline' one: a registry that does not know us need not learn we left.
    if (bits === undefined || override === 'offline' || aborted(options)) return first
    try {
      this.#log.info(
        { event: 'registry.pow.computing', bits },
        'finding the admission stamp the registry asks for',
      )
      const started = Date.now()
      const did = this.#init.key.did
      const stamp = { bits, nonce: await computePow(did, bits, options) }
      await this.#stamps.put(powKey(did), stamp)
      this.#stamp = stamp
      this.#log.info({ event: 'registry.pow.found', bits, ms: Date.now() - started }, 'admission stamp found')
    } catch (err) {
      if (aborted(options)) return this.#cancelled(first.seq)
      const code = isMeshError(err) ? err.code : 'MESH_INTERNAL'
      return this.#failed(first.seq, code, err instanceof Error ? err.message : String(err))
    }
    return this.#sendOnce(override, timeoutMs, options)
  }

  async #sendOnce(
    override: 'offline' | undefined,
    timeoutMs: number,
    options: AbortOptions,
  ): Promise<HeartbeatResult & { powBits?: number }> {
    let seq: number | undefined
    try {
      if (aborted(options)) return this.#cancelled(seq)
      const unhealthy = this.#init.healthy?.() === false
      // An unhealthy node's store may fail the content's reads and the seq's write: the
      // report that it is down must not depend on them.
      const info: HeartbeatInfo = unhealthy
        ? await this.#lastContent(options)
        : await this.#init.content(options)
      this.#lastInfo = info
      seq = await this.#nextSeq(unhealthy)
      const { key } = this.#init
      const rotations = this.#init.rotations?.()
      const stamp = await this.#currentStamp()
      const heartbeat = signHeartbeat(key, {
        ...info,
        did: key.did,
        peerId: key.peerId().toString(),
        status: override ?? (unhealthy ? 'offline' : (info.status ?? 'online')),
        seq,
        ts: this.#now(),
        ...(rotations !== undefined && rotations.length > 0 ? { rotations } : {}),
        ...(stamp !== undefined ? { pow: stamp.nonce } : {}),
      })
      let response: Response
      let body: RegistryReply | undefined
      try {
        response = await fetch(this.#url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(heartbeat),
          signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), ...signalsOf(options)]),
        })
        body = await readJson(response)
      } catch (err) {
        if (aborted(options)) return this.#cancelled(seq)
        // Not reached, reset or timed out: to us the registry is unavailable.
        return this.#failed(seq, 'MESH_UNAVAILABLE', err instanceof Error ? err.message : String(err))
      }
      if (response.ok && body?.ok === true && isMeshStatus(body.status)) {
        return this.#succeeded(seq, heartbeat.status, body.status)
      }
      const code = isMeshErrorCode(body?.error?.code) ? body.error.code : (`HTTP_${response.status}` as const)
      const message = typeof body?.error?.message === 'string' ? body.error.message : response.statusText
      const powBits = powAsked(code, body)
      if (powBits !== undefined && powBits <= this.#maxPowBits && (this.#stamp?.bits ?? -1) < powBits) {
        // Expected once per key and registry: the caller finds a stamp and sends again.
        this.#log.debug({ event: 'registry.heartbeat.pow_required', seq, bits: powBits }, 'stamp asked')
        return { ok: false, seq, code, message, powBits }
      }
      return this.#failed(seq, code, message)
    } catch (err) {
      // The content callback, the store or signing failed: ours, not the registry's.
      const code = isMeshError(err) ? err.code : 'MESH_INTERNAL'
      return this.#failed(seq, code, err instanceof Error ? err.message : String(err))
    }
  }

  async #currentStamp(): Promise<PowStamp | undefined> {
    if (this.#stamp !== undefined) return this.#stamp ?? undefined
    // A failing store (the node is unhealthy) must not stop the heartbeat that says so;
    // the stamp is read again on the next beat.
    const stored = await this.#stamps.get(powKey(this.#init.key.did)).catch(() => undefined)
    if (stored !== undefined) this.#stamp = stored
    return stored
  }

  /** Persisted before sending, so a crash after a send never reuses a seq; the clock keeps it growing even if the store is lost. */
  async #nextSeq(storeMayFail = false): Promise<number> {
    const last = this.#lastSeq ?? (await this.#sublevel.get(SEQ_KEY).catch(() => undefined)) ?? 0
    const seq = Math.max(last + 1, this.#now())
    try {
      await this.#sublevel.put(SEQ_KEY, seq)
    } catch (err) {
      // The clock keeps a seq growing across restarts even when it was not persisted.
      if (!storeMayFail) throw err
    }
    this.#lastSeq = seq
    return seq
  }

  /** The content of the last heartbeat sent, or a fresh one if the store still answers. */
  async #lastContent(options: AbortOptions): Promise<HeartbeatInfo> {
    if (this.#lastInfo !== undefined) return this.#lastInfo
    return this.#init.content(options)
  }

  #succeeded(seq: number, sent: HeartbeatStatus, status: MeshStatus): HeartbeatResult {
    this.#sent?.inc({ outcome: 'accepted' })
    // Routine heartbeats are debug; the first one and a recovery are worth an info line.
    const level = this.#healthy ? 'debug' : 'info'
    this.#healthy = true
    this.#log[level]({ event: 'registry.heartbeat.sent', seq, sent, status }, 'heartbeat sent')
    return { ok: true, seq, status }
  }

  // Cut short by the caller (the node stopping): neither a failure of the registry nor news.
  #cancelled(seq: number | undefined): HeartbeatResult {
    this.#log.debug({ event: 'registry.heartbeat.cancelled', seq }, 'heartbeat cancelled')
    return { ok: false, seq, code: 'MESH_UNAVAILABLE', message: 'cancelled' }
  }

  #failed(seq: number | undefined, code: MeshErrorCode | `HTTP_${number}`, message: string): HeartbeatResult {
    this.#sent?.inc({ outcome: code })
    this.#healthy = false
    this.#log.warn({ event: 'registry.heartbeat.failed', seq, code, message }, 'heartbeat failed')
    return { ok: false, seq, code, message }
  }
}

interface RegistryReply {
  ok?: unknown
  status?: unknown
  error?: { code?: unknown; message?: unknown; details?: { reason?: unknown; powBits?: unknown } }
}

/** The difficulty a registry's refusal asks for, if it is asking for an admission stamp. */
function powAsked(code: string, body: RegistryReply | undefined): number | undefined {
  const details = body?.error?.details
  if (code !== 'MESH_FORBIDDEN' || details?.reason !== 'pow-required') return undefined
  const bits = details.powBits
  return typeof bits === 'number' && Number.isInteger(bits) && bits >= 0 ? bits : undefined
}

// A registry (or a proxy in front of it) may answer with anything; an unreadable body
// is reported through the HTTP status instead.
async function readJson(response: Response): Promise<RegistryReply | undefined> {
  const text = await response.text()
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null ? (value as RegistryReply) : undefined
  } catch {
    return undefined
  }
}

const isMeshErrorCode = (value: unknown): value is MeshErrorCode =>
  typeof value === 'string' && Object.hasOwn(ERROR_STATUS, value)

const isMeshStatus = (value: unknown): value is MeshStatus => MESH_STATUSES.includes(value as MeshStatus)

// A function, not an inline check, because the signal may abort while we await.
const aborted = (options: AbortOptions): boolean => options.signal?.aborted === true

const signalsOf = (options: AbortOptions): AbortSignal[] =>
  options.signal === undefined ? [] : [options.signal]
