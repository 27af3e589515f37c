/** One route of the HTTP API (see routes.ts): the shape every table entry has. */
export interface RouteSpec {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH'
  readonly path: string
  /** Needs a bearer token (checked before the body is read). */
  readonly session: boolean
  /** The success status when it is not 200. */
  readonly status?: number
  readonly params?: object
  readonly query?: object
  readonly body?: object
  readonly response?: object
}

export const route = <const R extends RouteSpec>(spec: R): R => spec
