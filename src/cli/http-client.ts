import { sessionChallengeText } from '../auth/index.ts'
import { MeshError, type MeshErrorCode, UnavailableError } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'

/** A thin JSON client of a node's HTTP API; errors come back as the MeshError the node sent. */
export class HttpClient {
  readonly baseUrl: string
  token?: string
  /** The node's mesh did, once `signIn` has read it. */
  meshDid?: string

  constructor(baseUrl: string, token?: string) {
    this.baseUrl = baseUrl
    if (token !== undefined) this.token = token
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path)
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body)
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body)
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    let response: Response
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(15_000),
      })
    } catch (err) {
      throw new UnavailableError(`cannot reach ${this.baseUrl}: ${(err as Error).message}`)
    }
    const text = await response.text()
    let json: unknown
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined
    } catch {
      throw new MeshError('MESH_INTERNAL', `non-JSON answer from ${path} (${response.status})`)
    }
    if (!response.ok) {
      const error = (
        json as { error?: { code?: string; message?: string; details?: Record<string, unknown> } }
      )?.error
      throw new MeshError(
        (error?.code ?? 'MESH_INTERNAL') as MeshErrorCode,
        error?.message ?? `HTTP ${response.status}`,
        error?.details ?? {},
      )
    }
    return json as T
  }
}

/** Opens a session at a node by signing its challenge with a human (or agent) key. */
export async function signIn(baseUrl: string, key: Ed25519KeyPair): Promise<HttpClient> {
  const client = new HttpClient(baseUrl)
  const health = await client.get<{ did: string }>('/api/health')
  const { nonce } = await client.get<{ nonce: string }>('/api/session/challenge')
  const signature = Buffer.from(
    key.sign(new TextEncoder().encode(sessionChallengeText(health.did, nonce))),
  ).toString('base64url')
  const { token } = await client.post<{ token: string }>('/api/session', { did: key.did, nonce, signature })
  client.token = token
  client.meshDid = health.did
  return client
}
