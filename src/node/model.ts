import type { Registry } from 'prom-client'
import { Counter } from '../kernel/prom.ts' // issue 15: not prom-client's index
import { checkQuotaOverrides, ModelProxy, ModelUpstream, QuotaBook, quotaPolicy } from '../model/index.ts'
import type { NodeWiring } from './parts.ts'
import type { ReputationFeed } from './reputation.ts'

/** The environment variable the upstream's key is read from when `model.apiKey` is not given. */
export const MODEL_API_KEY_ENV = 'MESH_MODEL_API_KEY'

/**
 * The model proxy (SPEC §13): its upstream (`init.model.upstream`, key from
 * `MESH_MODEL_API_KEY`), its quota book kept in the store, and the principals it serves —
 * this mesh's own at their tier, foreign ones under a chain (`model/invoke`).
 */
export async function startModel(
  wiring: NodeWiring & { reputation: ReputationFeed; metrics: Registry },
): Promise<ModelProxy> {
  const { parts, init, logger } = wiring
  const counters = modelCounters(wiring.metrics)
  const options = init.model ?? {}
  // checked here: it may come from a file (mesh start --model-quotas)
  const policy = quotaPolicy(options.quotas === undefined ? {} : checkQuotaOverrides(options.quotas))
  const quotas = new QuotaBook({ policy, store: parts.get('store') })
  await quotas.load()
  parts.onStop(() => quotas.flush())
  const apiKey = options.apiKey ?? process.env[MODEL_API_KEY_ENV]
  const upstream =
    options.upstream === undefined
      ? undefined
      : new ModelUpstream({
          url: options.upstream,
          ...(apiKey !== undefined ? { apiKey } : {}),
          ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
        })
  const members = parts.get('members')
  const proxy = new ModelProxy({
    upstream,
    quotas,
    authority: () => parts.get('authority'),
    tierOf: async (did) => (await members.localPrincipal(did))?.tier,
    audit: parts.get('audit'),
    onInteraction: wiring.reputation.local,
    onCall: ({ outcome, tokens, via, stream }) => {
      counters.calls.inc({ outcome, via, stream: String(stream) })
      if (tokens > 0) counters.tokens.inc({ via }, tokens)
    },
    logger,
  })
  return parts.set('model', proxy)
}

/** `mesh_model_calls_total{outcome,via,stream}`, `mesh_model_tokens_total{via}` (once per registry: a restart reuses them). */
function modelCounters(metrics: Registry): {
  calls: Counter<'outcome' | 'via' | 'stream'>
  tokens: Counter<'via'>
} {
  const calls =
    (metrics.getSingleMetric('mesh_model_calls_total') as
      | Counter<'outcome' | 'via' | 'stream'>
      | undefined) ??
    new Counter({
      name: 'mesh_model_calls_total',
      help: 'Model proxy calls by outcome (ok, refused, failed, aborted), way in and streaming',
      labelNames: ['outcome', 'via', 'stream'] as const,
      registers: [metrics],
    })
  const tokens =
    (metrics.getSingleMetric('mesh_model_tokens_total') as Counter<'via'> | undefined) ??
    new Counter({
      name: 'mesh_model_tokens_total',
      help: 'Tokens charged by the model proxy (as the upstream reported them, else estimated)',
      labelNames: ['via'] as const,
      registers: [metrics],
    })
  return { calls, tokens }
}
