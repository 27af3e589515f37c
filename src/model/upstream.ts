import { createParser } from 'eventsource-parser'
import {
  BadRequestError,
  type MeshError,
  NotFoundError,
  RateLimitedError,
  TooLargeError,
  UnavailableError,
} from '../errors.ts'

/** Token counts as an OpenAI-compatible upstream reports them (`usage`). */
export interface ModelUsage {
  promptTokens: number
  completionTokens: number
  totalTokens: number
}

export interface ModelUpstreamInit {
  /** The upstream's base URL, as OpenAI clients take it (e.g. `http://host:8000/v1`). */
  url: string
  /** Sent as `Authorization: Bearer …` (from `MESH_MODEL_API_KEY`). */
  apiKey?: string
  /** The wait for an upstream answer's head (status and headers) at most this long; default 120 000 ms. */
  timeoutMs?: number
}

/** One completion, whole: the upstream's JSON, its text as sent (relayed as is), and the usage it reported. */
export interface Completion {
  body: Record<string, unknown>
  text: string
  usage: ModelUsage | undefined
}

/** One event of a streamed completion: its `data` as sent, parsed, and the usage it carried. */
export interface CompletionChunk {
  data: string
  json: Record<string, unknown> | undefined
  usage: ModelUsage | undefined
}

/** Longest upstream error text kept in a refusal's details. */
const MAX_ERROR_TEXT = 2048

/** `usage` of an upstream answer, when it has one in the OpenAI shape. */
export function usageOf(json: unknown): ModelUsage | undefined {
  const usage = (json as { usage?: unknown } | null)?.usage as Record<string, unknown> | null | undefined
  if (usage === null || typeof usage !== 'object') return undefined
  const count = (value: unknown) =>
    typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0
  const promptTokens = count(usage.prompt_tokens)
  const completionTokens = count(usage.completion_tokens)
  const total = count(usage.total_tokens)
  return { promptTokens, completionTokens, totalTokens: total > 0 ? total : promptTokens + completionTokens }
}

/**
 * The model proxy's client of its upstream (SPEC §13): plain `fetch` (undici, kept-alive
 * connections) to an OpenAI-compatible server, server-sent events parsed by
 * `eventsource-parser`. Every failure is a MeshError: unreachable, timed out, a 5xx or a
 * refused key → MESH_UNAVAILABLE (the caller did nothing wrong); a 400/422 →
 * MESH_BAD_REQUEST, 404 → MESH_NOT_FOUND, 413 → MESH_TOO_LARGE, 429 → MESH_RATE_LIMITED
 * (with the upstream's Retry-After), each with the upstream's status and message in
 * `details`. An abort of `signal` (the client went away) aborts the upstream call.
 */
export class ModelUpstream {
  readonly #base: string
  readonly #apiKey: string | undefined
  readonly #timeoutMs: number

  constructor(init: ModelUpstreamInit) {
    const url = new URL(init.url)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new BadRequestError(`the model upstream must be an http(s) URL: ${init.url}`, {
        reason: 'upstream',
      })
    }
    this.#base = url.href.endsWith('/') ? url.href : `${url.href}/`
    this.#apiKey = init.apiKey === '' ? undefined : init.apiKey
    this.#timeoutMs = init.timeoutMs ?? 120_000
  }

  /** The upstream's base URL (never its key). */
  get url(): string {
    return this.#base
  }

  /** `GET <base>/models`. */
  async models(signal?: AbortSignal): Promise<Record<string, unknown>> {
    const response = await this.#fetch('models', { method: 'GET' }, signal)
    return readJson(response)
  }

  /** `POST <base>/chat/completions`, not streamed. */
  async complete(body: Record<string, unknown>, signal?: AbortSignal): Promise<Completion> {
    const response = await this.#post(body, signal)
    const text = await response.text().catch((err: unknown) => {
      if (signal?.aborted) throw signal.reason
      throw upstreamFailure(`the upstream answer was cut: ${(err as Error).message}`, 'upstream-cut')
    })
    const json = parseObject(text)
    return { body: json, text, usage: usageOf(json) }
  }

  /**
   * `POST <base>/chat/completions` with `stream: true`: its events one by one, as they
   * arrive (`[DONE]` ends it and is not yielded). A stream cut before `[DONE]` throws
   * MESH_UNAVAILABLE (`reason: 'upstream-cut'`).
   */
  async *stream(body: Record<string, unknown>, signal?: AbortSignal): AsyncGenerator<CompletionChunk> {
    const response = await this.#post(body, signal)
    if (response.body === null) throw upstreamFailure('the upstream sent no stream', 'upstream-malformed')
    const queue: CompletionChunk[] = []
    let done = false
    const parser = createParser({
      onEvent: (event) => {
        if (done) return
        if (event.data === '[DONE]') {
          done = true
          return
        }
        let json: Record<string, unknown> | undefined
        try {
          const parsed: unknown = JSON.parse(event.data)
          json =
            parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined
        } catch {
          json = undefined
        }
        queue.push({ data: event.data, json, usage: usageOf(json) })
      },
    })
    const decoder = new TextDecoder()
    try {
      for await (const bytes of response.body as AsyncIterable<Uint8Array>) {
        parser.feed(decoder.decode(bytes, { stream: true }))
        while (queue.length > 0) yield queue.shift() as CompletionChunk
        if (done) return
      }
    } catch (err) {
      if (signal?.aborted) throw signal.reason
      throw upstreamFailure(`the upstream stream failed: ${(err as Error).message}`, 'upstream-cut')
    }
    while (queue.length > 0) yield queue.shift() as CompletionChunk
    if (!done) throw upstreamFailure('the upstream stream ended before [DONE]', 'upstream-cut')
  }

  #post(body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
    return this.#fetch(
      'chat/completions',
      { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } },
      signal,
    )
  }

  async #fetch(path: string, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    // The timeout bounds the wait for the answer's head only: a long stream runs its course.
    const timeout = new AbortController()
    const timer = setTimeout(() => timeout.abort(new Error('timeout')), this.#timeoutMs)
    let response: Response
    try {
      response = await fetch(new URL(path, this.#base), {
        ...init,
        headers: {
          accept: 'application/json, text/event-stream',
          ...(init.headers as Record<string, string> | undefined),
          ...(this.#apiKey === undefined ? {} : { authorization: `Bearer ${this.#apiKey}` }),
        },
        signal: signal === undefined ? timeout.signal : AbortSignal.any([signal, timeout.signal]),
      })
    } catch (err) {
      if (signal?.aborted) throw signal.reason
      if (timeout.signal.aborted) {
        throw upstreamFailure('the model upstream did not answer in time', 'upstream-timeout')
      }
      throw upstreamFailure(`the model upstream is unreachable: ${causeOf(err)}`, 'upstream-unreachable')
    } finally {
      clearTimeout(timer)
    }
    if (!response.ok) throw await refusalOf(response)
    return response
  }
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ?? cause?.message ?? (err as Error).message
}

function upstreamFailure(message: string, reason: string, details: Record<string, unknown> = {}): MeshError {
  return new UnavailableError(message, { reason, ...details })
}

async function readJson(response: Response): Promise<Record<string, unknown>> {
  return parseObject(await response.text())
}

function parseObject(text: string): Record<string, unknown> {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw upstreamFailure('the model upstream sent no JSON', 'upstream-malformed')
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw upstreamFailure('the model upstream sent no JSON object', 'upstream-malformed')
  }
  return json as Record<string, unknown>
}

/** An upstream's refusal as a MeshError of ours, with its status and message. */
async function refusalOf(response: Response): Promise<MeshError> {
  const text = (await response.text().catch(() => '')).slice(0, MAX_ERROR_TEXT)
  let message = text
  try {
    const error = (JSON.parse(text) as { error?: { message?: unknown } | string }).error
    message = typeof error === 'string' ? error : typeof error?.message === 'string' ? error.message : text
  } catch {}
  const details = { upstreamStatus: response.status, upstreamMessage: message }
  const status = response.status
  if (status === 429) {
    const seconds = Number(response.headers.get('retry-after'))
    return new RateLimitedError(`the model upstream is rate limited: ${message}`, {
      reason: 'upstream-rate-limited',
      ...details,
      retryAfterMs: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000,
    })
  }
  if (status === 404)
    return new NotFoundError(`the model upstream: ${message}`, { reason: 'upstream', ...details })
  if (status === 413)
    return new TooLargeError(`the model upstream: ${message}`, { reason: 'upstream', ...details })
  if (status === 400 || status === 422) {
    return new BadRequestError(`the model upstream refused the request: ${message}`, {
      reason: 'upstream',
      ...details,
    })
  }
  if (status === 401 || status === 403) {
    // this mesh's key, not the caller's doing
    return upstreamFailure('the model upstream refused this mesh’s key', 'upstream-auth', details)
  }
  return upstreamFailure(`the model upstream failed: ${message}`, 'upstream-error', details)
}
