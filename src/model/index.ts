export {
  type ChatRequest,
  estimateTokens,
  MODEL_INVOKE,
  type ModelCaller,
  type ModelChainRequest,
  type ModelInvokeResult,
  ModelProxy,
  type ModelProxyInit,
} from './proxy.ts'
export {
  checkQuotaOverrides,
  DEFAULT_QUOTA_POLICY,
  QuotaBook,
  type QuotaLimits,
  type QuotaOverrides,
  type QuotaPolicy,
  quotaPolicy,
  type Reservation,
  type Tier,
  type UsageRecord,
} from './quotas.ts'
export {
  type Completion,
  type CompletionChunk,
  ModelUpstream,
  type ModelUpstreamInit,
  type ModelUsage,
  usageOf,
} from './upstream.ts'
