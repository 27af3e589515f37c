import { toBase64url } from './base64url.ts'
import { type RouteName, type RouteSpec, routes } from './routes.ts'
import type { ErrorBody, RouteInput, RouteOutput } from './types.ts'

/**
 * The typed client of a node's HTTP API (and a registry's), for the CLI, the console
 * and the tests. Browser-safe: the global `fetch` (or one given), no node imports.
 */

/** A refusal in the SPEC §3 shape, or a failure to get one (`status` 0: no answer at all). */
export class ApiError extends Error {
  /** A `MESH_…` code of the node's error table. */
  readonly code: string
  /** The HTTP status; 0 when the node could not be reached. */
  readonly status: number
  readonly details: Record<string, unknown>

  constructor(code: string, message: string, status: number, details: Record<string, unknown> = {}) {
    super(message)
    this.name = 'ApiError'
    this.code = code
    this.status = status
    this.details = details
  }
}

export interface ApiClientInit {
  /** The node's origin, e.g. `http://127.0.0.1:7700` (no trailing slash); '' for the page's own. */
  baseUrl: string
  token?: string
  /** Default: the global fetch, looked up at each call. */
  fetch?: typeof fetch
  /** Per-request timeout; default 15 s. */
  timeoutMs?: number
}

export interface RequestOptions {
  signal?: AbortSignal
}

/** Signs the session challenge as a principal: Ed25519 over the given bytes. */
export interface ApiSigner {
  did: string
  sign(bytes: Uint8Array): Uint8Array | Promise<Uint8Array>
}

/** The text a principal signs to open a session at a mesh (SPEC §3). */
export function sessionChallengeText(meshDid: string, nonce: string): string {
  return `mesh-session:${meshDid}:${nonce}`
}

// A route whose input has no required part (no params, no body) may be called without one.
export type CallArgs<N extends RouteName> =
  Record<never, never> extends RouteInput<N>
    ? [input?: RouteInput<N>, options?: RequestOptions]
    : [input: RouteInput<N>, options?: RequestOptions]

interface AnyInput {
  params?: Record<string, string>
  query?: Record<string, string | number | undefined>
  body?: unknown
}

const DEFAULT_TIMEOUT_MS = 15_000

export class ApiClient {
  readonly baseUrl: string
  /** The bearer token sent with every request, once signed in. */
  token: string | undefined
  /** The node's mesh did, once `signIn` has read it. */
  meshDid: string | undefined
  readonly #fetch: typeof fetch | undefined
  readonly #timeoutMs: number

  constructor(init: ApiClientInit) {
    this.baseUrl = init.baseUrl
    this.token = init.token
    this.meshDid = undefined
    this.#fetch = init.fetch
    this.#timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS
  }

  /** Calls route `name` of the contract with its params, query and body. */
  call<N extends RouteName>(name: N, ...[input, options]: CallArgs<N>): Promise<NoInfer<RouteOutput<N>>> {
    const spec: RouteSpec = routes[name]
    const { params, query, body } = (input ?? {}) as AnyInput
    return this.send<RouteOutput<N>>(spec.method, pathOf(spec.path, params) + queryOf(query), body, options)
  }

  /** Any request by method and path; the answer is the parsed JSON (undefined when empty). */
  async send<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
    const fetchFn = this.#fetch ?? globalThis.fetch
    let response: Response
    try {
      response = await fetchFn(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal,
      })
    } catch (err) {
      throw new ApiError('MESH_UNAVAILABLE', `cannot reach ${this.baseUrl}: ${(err as Error).message}`, 0)
    }
    const text = await response.text()
    let json: unknown
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined
    } catch {
      throw new ApiError(
        'MESH_INTERNAL',
        `non-JSON answer from ${path} (${response.status})`,
        response.status,
      )
    }
    if (!response.ok) {
      const error = (json as Partial<ErrorBody> | undefined)?.error
      throw new ApiError(
        error?.code ?? 'MESH_INTERNAL',
        error?.message ?? `HTTP ${response.status}`,
        response.status,
        error?.details ?? {},
      )
    }
    return json as T
  }

  /**
   * Opens a session by signing the node's challenge (`mesh-session:<mesh did>:<nonce>`);
   * the client then sends the token with every request.
   */
  async signIn(
    signer: ApiSigner,
    options: RequestOptions = {},
  ): Promise<{ token: string; expiresAt: string }> {
    const health = await this.call('health', undefined, options)
    const { nonce } = await this.call('challenge', undefined, options)
    const signed = await signer.sign(new TextEncoder().encode(sessionChallengeText(health.did, nonce)))
    const session = await this.call(
      'openSession',
      { body: { did: signer.did, nonce, signature: toBase64url(signed) } },
      options,
    )
    this.token = session.token
    this.meshDid = health.did
    return session
  }

  // files in rooms (issue 18): a file's bytes go raw, not as JSON
  /** `POST /api/rooms/:id/files`: uploads `body` as the file `name` (of type `mime`). */
  async uploadFile(
    room: string,
    body: Blob | Uint8Array,
    meta: { name: string; mime?: string },
    options: RequestOptions = {},
  ): Promise<RouteOutput<'uploadFile'>> {
    const path = pathOf(routes.uploadFile.path, { id: room }) + queryOf(meta)
    const response = await this.#raw(
      'POST',
      path,
      options,
      { 'content-type': 'application/octet-stream' },
      body,
    )
    return (await response.json()) as RouteOutput<'uploadFile'>
  }

  /** `GET /api/files/:cid` (a `range` such as `bytes=0-99`): the answer, its body unread. */
  fetchFile(cid: string, options: RequestOptions & { range?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = options.range !== undefined ? { range: options.range } : {}
    return this.#raw('GET', pathOf(routes.getFile.path, { cid }), options, headers)
  }

  /** A request whose body or answer is bytes; no timeout but the caller's; a refusal throws ApiError. */
  async #raw(
    method: string,
    path: string,
    options: RequestOptions,
    headers: Record<string, string>,
    body?: Blob | Uint8Array,
  ): Promise<Response> {
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    let response: Response
    try {
      response = await (this.#fetch ?? globalThis.fetch)(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: body as RequestInit['body'] } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
      })
    } catch (err) {
      throw new ApiError('MESH_UNAVAILABLE', `cannot reach ${this.baseUrl}: ${(err as Error).message}`, 0)
    }
    if (response.ok) return response
    const error = ((await response.json().catch(() => undefined)) as Partial<ErrorBody> | undefined)?.error
    throw new ApiError(
      error?.code ?? 'MESH_INTERNAL',
      error?.message ?? `HTTP ${response.status}`,
      response.status,
      error?.details ?? {},
    )
  }

  /** Ends the session: the token fails at once and its y-websockets close. */
  async signOut(options: RequestOptions = {}): Promise<void> {
    await this.call('closeSession', undefined, options)
    this.token = undefined
  }
}

export function createApiClient(init: ApiClientInit): ApiClient {
  return new ApiClient(init)
}

function pathOf(template: string, params: Record<string, string> = {}): string {
  return template.replace(/:([A-Za-z]+)/g, (_match, name: string) => {
    const value = params[name]
    if (value === undefined) throw new TypeError(`missing path parameter ${name} of ${template}`)
    return encodeURIComponent(value)
  })
}

function queryOf(query: Record<string, string | number | undefined> = {}): string {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) if (value !== undefined) search.set(key, String(value))
  const text = search.toString()
  return text.length > 0 ? `?${text}` : ''
}
