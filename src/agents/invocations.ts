import type { Authority } from '../auth/authority/index.ts'
import { toMeshError } from '../auth/authority/index.ts'
import { MeshError } from '../errors.ts'
import type { InvokeRequest } from './agent-service.ts'

/** Runs one verified-by-itself invocation of one ability; throws a MeshError to refuse. */
export type InvocationHandler = (
  request: InvokeRequest,
  options: { signal?: AbortSignal },
) => Promise<unknown>

export interface InvocationsInit {
  /** A getter: a key rotation replaces the authority. */
  authority: () => Pick<Authority, 'chains'>
  /**
   * Who runs each ability a foreign principal may invoke (`agent/invoke` → the agents,
   * `room/read` / `room/post` → foreign access). Each handler verifies the chain itself.
   */
  handlers: Readonly<Record<string, InvocationHandler>>
}

/**
 * THE invocation dispatcher: a foreign principal's invocation, however it arrived —
 * `POST /api/invoke` (HTTP) or `/mesh/invoke/1.0.0` (libp2p, carried by its own mesh) —
 * goes to the one handler of the ability it claims, so both ways answer the same
 * `{ok}` and refuse with the same `MESH_…` codes. Only the first capability is read here,
 * before any signature; the handler checks everything (a handler refuses an invocation
 * that claims more than one). An ability with no handler is refused `MESH_UCAN_INVALID`
 * (`reason: 'capability'`, `takes`: the abilities there are), before any proof is checked.
 */
export class Invocations {
  readonly #init: InvocationsInit

  constructor(init: InvocationsInit) {
    this.#init = init
  }

  /** The abilities it dispatches. */
  abilities(): string[] {
    return Object.keys(this.#init.handlers)
  }

  async invoke(request: InvokeRequest, options: { signal?: AbortSignal } = {}): Promise<unknown> {
    const decoded = this.#init.authority().chains.decode(request.ucan)
    if (decoded.error !== undefined) throw toMeshError(decoded.error)
    const can = (decoded.ok.invocation.view.capabilities[0] as { can?: unknown } | undefined)?.can
    const handler =
      typeof can === 'string' && Object.hasOwn(this.#init.handlers, can)
        ? this.#init.handlers[can]
        : undefined
    if (handler === undefined) {
      throw new MeshError(
        'MESH_UCAN_INVALID',
        `an invocation here is one of ${this.abilities().join(', ')}`,
        {
          proof: 'ucan',
          reason: 'capability',
          can: typeof can === 'string' ? can : null,
          takes: this.abilities(),
        },
      )
    }
    return handler(request, options)
  }
}
