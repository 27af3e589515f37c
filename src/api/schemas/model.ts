import { DID, INTEGER, listOf, NULLABLE_STRING, optionalObject, strictObject } from './common.ts'

/**
 * The model proxy (SPEC §13): OpenAI-compatible `POST /v1/chat/completions` and
 * `GET /v1/models`, and `GET /api/usage`.
 */

const COUNT = { type: 'integer', minimum: 0 } as const

/**
 * `POST /v1/chat/completions`: OpenAI's chat completion request. `model` and `messages`
 * are required and typed here with the fields the proxy reads; every other field
 * (temperature, tools, …) goes upstream as given (additionalProperties: an OpenAI client
 * sends many, and the upstream is their judge).
 */
export const chatCompletionBodySchema = {
  type: 'object',
  additionalProperties: true,
  required: ['model', 'messages'],
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    messages: { type: 'array', minItems: 1, maxItems: 4096, items: { type: 'object' } },
    stream: { type: 'boolean' },
    stream_options: { type: ['object', 'null'] },
    max_tokens: { type: ['integer', 'null'], minimum: 1 },
    max_completion_tokens: { type: ['integer', 'null'], minimum: 1 },
    n: { type: ['integer', 'null'], minimum: 1, maximum: 128 },
  },
} as const

/** The upstream's answer as it gave it (a completion, or `{object: 'list', data}` of models). */
export const upstreamAnswerSchema = { type: 'object', additionalProperties: true } as const

const limitsSchema = optionalObject({
  requestsPerMinute: INTEGER,
  requestsPerDay: INTEGER,
  tokensPerMinute: INTEGER,
  tokensPerDay: INTEGER,
})

const windowSchema = strictObject({ requests: INTEGER, tokens: INTEGER }, ['requests', 'tokens'])

/** One principal's use of the model proxy: totals, the current minute and day, and its limits. */
export const usageRecordSchema = strictObject(
  {
    principal: DID,
    tier: { type: 'integer', minimum: 1, maximum: 4 },
    requests: COUNT,
    refused: COUNT,
    failed: COUNT,
    promptTokens: COUNT,
    completionTokens: COUNT,
    totalTokens: COUNT,
    minute: windowSchema,
    day: windowSchema,
    lastAt: NULLABLE_STRING,
    limits: limitsSchema,
  },
  [
    'principal',
    'tier',
    'requests',
    'refused',
    'failed',
    'promptTokens',
    'completionTokens',
    'totalTokens',
    'minute',
    'day',
    'lastAt',
    'limits',
  ],
)

/** `GET /api/usage?principal=`: one principal's, or (tier ≤ 2) everyone's. */
export const usageQuerySchema = optionalObject({ principal: DID })
export const usageListSchema = listOf('usage', usageRecordSchema)

/** The header a foreign principal's `model/invoke` invocation travels in, instead of a session. */
export const MODEL_UCAN_HEADER = 'x-mesh-ucan'
/** Beside it: the credentials (VC-JWTs, comma-separated, at most 16) that show who in the chain is human. */
export const MODEL_CREDENTIALS_HEADER = 'x-mesh-credentials'
