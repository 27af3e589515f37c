import type { AuditLog } from '../audit/index.ts'
import { type Authority, toMeshError } from '../auth/authority/index.ts'
import { BadRequestError, ForbiddenError, isMeshError, MeshError, UnavailableError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { QuotaBook, Reservation, Tier, UsageRecord } from './quotas.ts'
import type { Completion, ModelUpstream, ModelUsage } from './upstream.ts'

/** The ability a foreign principal's chain grants on this mesh's model proxy (with = the mesh did). */
export const MODEL_INVOKE = 'model/invoke'

/** An invocation as `POST /api/invoke`, `/mesh/invoke/1.0.0` and the `x-mesh-ucan` header carry it. */
export interface ModelChainRequest {
  ucan: string
  credentials?: string[]
  presentation?: string
}

/** Who calls the proxy, as verified: a member by its session, or a foreign principal by its chain. */
export interface ModelCaller {
  did: string
  tier: Tier
  via: 'session' | 'chain'
  /** With a chain: the invocation's CID, the human in the chain, and the model it is bound to (nb.model). */
  invocation?: string
  human?: string | null
  model?: string
}

/** A chat completion request (OpenAI's shape): `model` and `messages`; every other field goes upstream as given. */
export type ChatRequest = Record<string, unknown> & { model: string; messages: unknown[] }

/** `POST /api/invoke`'s answer to a `model/invoke`. */
export interface ModelInvokeResult {
  ability: typeof MODEL_INVOKE
  invoker: string
  invocation: string
  tier: number
  human: string | null
  result: Record<string, unknown>
}

export interface ModelProxyInit {
  /** None: every call answers MESH_UNAVAILABLE. */
  upstream: ModelUpstream | undefined
  quotas: QuotaBook
  /** A getter: a key rotation replaces the authority. */
  authority: () => Pick<Authority, 'meshDid' | 'chains' | 'verifyAuthority'>
  /** This mesh's own principal's tier (the architect 1, a member its tier); undefined: not one of ours. */
  tierOf: (did: string) => Promise<Tier | undefined>
  audit?: Pick<AuditLog, 'append'>
  onInteraction?: (did: string, outcome: 'accepted' | 'refused', reason: string) => void
  /** Each call's end, as its audit row says it (metrics): outcome `ok|refused|failed|aborted`, tokens charged. */
  onCall?: (call: { outcome: string; tokens: number; via: ModelCaller['via']; stream: boolean }) => void
  logger?: Logger
}

/**
 * The model proxy (SPEC §13): one OpenAI-compatible upstream for this mesh's principals
 * (by session) and foreign ones (under a human-signed chain granting `model/invoke`),
 * each call counted against its principal's and its tier's quotas (QuotaBook) before it
 * goes upstream, charged what the upstream reports, and written to the audit log
 * (`model.called`: principal, model, tokens, outcome).
 */
export class ModelProxy {
  readonly #init: ModelProxyInit

  constructor(init: ModelProxyInit) {
    this.#init = init
  }

  /** Whether it has an upstream (else every call is MESH_UNAVAILABLE). */
  get available(): boolean {
    return this.#init.upstream !== undefined
  }

  get quotas(): QuotaBook {
    return this.#init.quotas
  }

  /** A signed-in principal of this mesh. */
  async localCaller(did: string): Promise<ModelCaller> {
    const tier = await this.#init.tierOf(did)
    if (tier === undefined) {
      throw new ForbiddenError('the model proxy serves this mesh’s members and chains rooted here', {
        reason: 'not-a-member',
      })
    }
    return { did, tier, via: 'session' }
  }

  /**
   * A foreign principal by its invocation of `model/invoke` on this mesh (with = the mesh
   * did; `nb.model` optional, fixed when a delegation in the chain sets it). Refused as
   * the authority says: no chain or a broken one MESH_UCAN_INVALID, no human in it
   * MESH_NOT_HUMAN_SIGNED, a replayed invocation MESH_REPLAY…
   */
  async chainCaller(request: ModelChainRequest): Promise<ModelCaller & { nb: Record<string, unknown> }> {
    const authority = this.#init.authority()
    const decoded = authority.chains.decode(request.ucan)
    if (decoded.error !== undefined) throw toMeshError(decoded.error)
    const capabilities = decoded.ok.invocation.view.capabilities as Array<{
      can?: unknown
      with?: unknown
      nb?: Record<string, unknown>
    }>
    const capability = capabilities[0]
    if (capabilities.length !== 1 || capability?.can !== MODEL_INVOKE) {
      throw new MeshError('MESH_UCAN_INVALID', `this takes one ${MODEL_INVOKE} invocation`, {
        proof: 'ucan',
        reason: 'capability',
        can: typeof capability?.can === 'string' ? capability.can : null,
      })
    }
    if (capability.with !== authority.meshDid) {
      throw new ForbiddenError(`${MODEL_INVOKE} acts on this mesh (with = ${authority.meshDid})`, {
        proof: 'ucan',
        reason: 'resource',
        with: String(capability.with),
      })
    }
    const nb = capability.nb ?? {}
    const verdict = await authority.verifyAuthority({
      ucan: request.ucan,
      can: MODEL_INVOKE,
      with: authority.meshDid,
      ...(typeof nb.model === 'string' ? { nb: { model: nb.model } } : {}),
      ...(request.credentials !== undefined ? { credentials: request.credentials } : {}),
      ...(request.presentation !== undefined ? { presentation: request.presentation } : {}),
    })
    if (verdict.error !== undefined) {
      if (verdict.error.accountable !== undefined) {
        this.#init.onInteraction?.(
          verdict.error.accountable,
          'refused',
          `${MODEL_INVOKE} ${verdict.error.code}`,
        )
      }
      throw toMeshError(verdict.error)
    }
    const ok = verdict.ok
    this.#init.onInteraction?.(ok.issuer, 'accepted', MODEL_INVOKE)
    return {
      did: ok.issuer,
      tier: ok.tier,
      via: 'chain',
      invocation: ok.invocation,
      human: ok.humanInChain ?? null,
      ...(typeof nb.model === 'string' ? { model: nb.model } : {}),
      nb,
    }
  }

  /** `GET /v1/models`: the upstream's list (not counted against a quota). */
  async models(_caller: ModelCaller, signal?: AbortSignal): Promise<Record<string, unknown>> {
    return this.#upstream().models(signal)
  }

  /** A completion, whole: the upstream's answer (`text` as it sent it, `body` parsed). */
  async complete(caller: ModelCaller, request: ChatRequest, signal?: AbortSignal): Promise<Completion> {
    const upstream = this.#upstream()
    const body = this.#checked(caller, request)
    const reservation = this.#reserve(caller, body)
    let done: Completion
    try {
      done = await upstream.complete(body.stream === undefined ? body : { ...body, stream: false }, signal)
    } catch (err) {
      this.#failed(caller, body, reservation, err)
      throw err
    }
    this.#charged(caller, body, reservation, done.usage, false)
    return done
  }

  /**
   * A streamed completion: each upstream event's `data`, as it arrives. The upstream is
   * asked for its usage (`stream_options.include_usage`); its usage-only chunk is passed
   * on only when the caller asked for it too.
   */
  async *stream(caller: ModelCaller, request: ChatRequest, signal?: AbortSignal): AsyncGenerator<string> {
    const upstream = this.#upstream()
    const body = this.#checked(caller, request)
    const options = body.stream_options as { include_usage?: unknown } | undefined
    const wantsUsage = options?.include_usage === true
    const reservation = this.#reserve(caller, body)
    let usage: ModelUsage | undefined
    let settled = false
    // once a chunk went out, the upstream spent tokens: a cut or an abort is charged (its usage, else the estimate)
    let delivered = false
    try {
      for await (const chunk of upstream.stream(
        { ...body, stream: true, stream_options: { ...options, include_usage: true } },
        signal,
      )) {
        if (chunk.usage !== undefined) usage = chunk.usage
        const choices = chunk.json?.choices
        const usageOnly = chunk.usage !== undefined && Array.isArray(choices) && choices.length === 0
        if (usageOnly && !wantsUsage) continue
        delivered = true
        yield chunk.data
      }
      settled = true
      this.#charged(caller, body, reservation, usage, true)
    } catch (err) {
      settled = true
      this.#failed(caller, body, reservation, err, usage, delivered)
      throw err
    } finally {
      // the consumer stopped early (the client went away)
      if (!settled) {
        this.#failed(caller, body, reservation, signal?.reason ?? new Error('stopped'), usage, delivered)
      }
    }
  }

  /**
   * The dispatcher's handler (`POST /api/invoke`, `/mesh/invoke/1.0.0`): `model/invoke`
   * with `nb.request` a chat completion request (not streamed) → the completion. Without
   * an upstream it is not offered: MESH_UCAN_INVALID (`reason: 'capability'`), as the
   * dispatcher refuses what the manifest does not list.
   */
  async invoke(
    request: ModelChainRequest,
    options: { signal?: AbortSignal } = {},
  ): Promise<ModelInvokeResult> {
    if (!this.available) {
      // not listed in the manifest without an upstream, so not dispatched (as the dispatcher refuses)
      throw new MeshError(
        'MESH_UCAN_INVALID',
        `this mesh offers no ${MODEL_INVOKE}: it has no model upstream`,
        {
          proof: 'ucan',
          reason: 'capability',
          can: MODEL_INVOKE,
        },
      )
    }
    const caller = await this.chainCaller(request)
    const chat = caller.nb.request
    if (chat === null || typeof chat !== 'object' || Array.isArray(chat)) {
      throw new BadRequestError(`${MODEL_INVOKE} takes nb.request, a chat completion request`, {
        reason: 'request',
      })
    }
    const { body: result } = await this.complete(caller, chat as ChatRequest, options.signal)
    return {
      ability: MODEL_INVOKE,
      invoker: caller.did,
      invocation: caller.invocation as string,
      tier: caller.tier,
      human: caller.human ?? null,
      result,
    }
  }

  /** Usage per principal: all of it, or `principal`'s. */
  usage(principal?: string): UsageRecord[] {
    return this.#init.quotas.usage(principal)
  }

  #upstream(): ModelUpstream {
    const upstream = this.#init.upstream
    if (upstream === undefined) {
      throw new UnavailableError('this mesh has no model upstream (mesh start --model-upstream URL)', {
        reason: 'no-upstream',
      })
    }
    return upstream
  }

  // The request as it goes upstream: a chain bound to one model (nb.model) allows that one only.
  #checked(caller: ModelCaller, request: ChatRequest): ChatRequest {
    if (typeof request.model !== 'string' || request.model.length === 0 || !Array.isArray(request.messages)) {
      throw new BadRequestError('a chat completion takes model (a string) and messages (an array)', {
        reason: 'request',
      })
    }
    if (caller.model !== undefined && caller.model !== request.model) {
      throw new ForbiddenError(`the chain grants model ${caller.model}, not ${request.model}`, {
        reason: 'model',
        model: request.model,
      })
    }
    return request
  }

  #reserve(caller: ModelCaller, body: ChatRequest): Reservation {
    const quotas = this.#init.quotas
    try {
      return quotas.reserve(caller.did, caller.tier, estimateTokens(body, quotas.policy.reserveTokens))
    } catch (err) {
      this.#audit(caller, body, { outcome: 'refused', code: (err as MeshError).code })
      throw err
    }
  }

  #charged(
    caller: ModelCaller,
    body: ChatRequest,
    reservation: Reservation,
    usage: ModelUsage | undefined,
    stream: boolean,
  ): void {
    this.#init.quotas.settle(reservation, usage === undefined ? {} : { usage })
    this.#audit(caller, body, {
      outcome: 'ok',
      stream,
      promptTokens: usage?.promptTokens ?? null,
      completionTokens: usage?.completionTokens ?? null,
      totalTokens: usage?.totalTokens ?? reservation.tokens,
      ...(usage === undefined ? { estimated: true } : {}),
    })
  }

  // An upstream failure before any answer gives the request back and costs nothing; a call
  // cut after part of its answer went out is charged what was reported, else its estimate.
  #failed(
    caller: ModelCaller,
    body: ChatRequest,
    reservation: Reservation,
    err: unknown,
    usage?: ModelUsage,
    delivered = false,
  ): void {
    this.#init.quotas.settle(reservation, usage !== undefined ? { usage } : delivered ? {} : { failed: true })
    this.#audit(caller, body, {
      outcome: isMeshError(err) ? 'failed' : 'aborted',
      code: isMeshError(err) ? err.code : null,
      totalTokens: usage?.totalTokens ?? (delivered ? reservation.tokens : 0),
      ...(usage === undefined && delivered ? { estimated: true } : {}),
    })
  }

  #audit(caller: ModelCaller, body: ChatRequest, details: Record<string, unknown>): void {
    this.#init.onCall?.({
      outcome: String(details.outcome),
      tokens:
        typeof details.totalTokens === 'number' && details.outcome !== 'refused' ? details.totalTokens : 0,
      via: caller.via,
      stream: body.stream === true,
    })
    const audit = this.#init.audit
    if (audit === undefined) return
    // after the answer is on its way: a row's signing and write are not the caller's wait
    setImmediate(() => this.#append(audit, caller, body, details))
  }

  #append(
    audit: Pick<AuditLog, 'append'>,
    caller: ModelCaller,
    body: ChatRequest,
    details: Record<string, unknown>,
  ): void {
    void audit
      .append({
        action: 'model.called',
        actor: caller.did,
        subject: String(body.model).slice(0, 256),
        details: {
          tier: caller.tier,
          via: caller.via,
          ...(caller.invocation !== undefined
            ? { invocation: caller.invocation, human: caller.human ?? null }
            : {}),
          ...details,
        },
      })
      .catch((err: unknown) =>
        this.#init.logger?.warn({ event: 'model.audit_failed', err: (err as Error).message }, 'audit failed'),
      )
  }
}

/** Tokens a call may use at most, as reserved before it: the prompt's size (4 bytes a token) and its completion cap. */
export function estimateTokens(body: ChatRequest, reserveTokens: number): number {
  const prompt = Math.ceil(Buffer.byteLength(JSON.stringify(body.messages)) / 4)
  const cap = [body.max_completion_tokens, body.max_tokens].find(
    (value): value is number => typeof value === 'number' && Number.isInteger(value) && value > 0,
  )
  const n = typeof body.n === 'number' && Number.isInteger(body.n) && body.n > 1 ? body.n : 1
  return prompt + (cap ?? reserveTokens) * n
}
