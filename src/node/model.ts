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
export async function startModel(wiring: NodeWiring & { reputation: ReputationFeed }): Promise<ModelProxy> {
  const { parts, init, logger } = wiring
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
    logger,
  })
  return parts.set('model', proxy)
}
