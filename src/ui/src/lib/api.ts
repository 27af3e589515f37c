import { ApiClient, ApiError } from '../../../api/client.ts'

/**
 * The console's side of the API contract (src/api): the node's types, its typed client
 * and its refusals (`ApiError`, with the MESH_… code) come from there; this only binds
 * the client to the page's own origin.
 */

export { ApiError }

/** A typed client of this node's API (the console is served by the node it talks to). */
export function nodeClient(token?: string): ApiClient {
  return new ApiClient({ baseUrl: location.origin, ...(token === undefined ? {} : { token }) })
}

export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err
  return new ApiError('MESH_INTERNAL', err instanceof Error ? err.message : String(err), 0)
}
