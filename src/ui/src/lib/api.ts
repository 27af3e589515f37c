/** A refusal from the node, in the SPEC §3 shape, or a failure to reach it. */
export class ApiError extends Error {
  readonly code: string
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

export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err
  return new ApiError('MESH_INTERNAL', err instanceof Error ? err.message : String(err), 0)
}

export interface RequestOptions {
  token?: string | undefined
  body?: unknown
  signal?: AbortSignal
}

/** One JSON request to this node's API (same origin). */
export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  let response: Response
  try {
    response = await fetch(path, {
      method,
      headers,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      signal: options.signal ?? AbortSignal.timeout(15_000),
    })
  } catch (err) {
    throw new ApiError('MESH_UNAVAILABLE', `cannot reach the node: ${(err as Error).message}`, 0)
  }
  const text = await response.text()
  let json: unknown
  try {
    json = text.length > 0 ? JSON.parse(text) : undefined
  } catch {
    throw new ApiError(
      'MESH_INTERNAL',
      `the node answered ${path} with something that is not JSON`,
      response.status,
    )
  }
  if (!response.ok) {
    const error = (json as { error?: { code?: string; message?: string; details?: Record<string, unknown> } })
      ?.error
    throw new ApiError(
      error?.code ?? 'MESH_INTERNAL',
      error?.message ?? `HTTP ${response.status}`,
      response.status,
      error?.details ?? {},
    )
  }
  return json as T
}
