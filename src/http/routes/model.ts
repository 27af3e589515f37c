import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import {
  chatCompletionBodySchema,
  MODEL_CREDENTIALS_HEADER,
  MODEL_UCAN_HEADER,
  usageQuerySchema,
} from '../../api/index.ts'
import { BadRequestError, ForbiddenError, toErrorJson } from '../../errors.ts'
import type { ChatRequest, ModelCaller, ModelProxy } from '../../model/index.ts'
import { sessionOf } from './session.ts'

export interface ModelRoutesInit {
  model: ModelProxy
  /** The largest chat completion request; default 1 MiB. */
  maxBodyBytes?: number
}

/** The tier at or below which a principal reads everyone's usage (tier 1 the architect, 2 super). */
const READS_ALL_USAGE = 2
const DEFAULT_MAX_BODY = 1024 * 1024

/**
 * The model proxy (SPEC §13), OpenAI-compatible: `POST /v1/chat/completions` (whole, or
 * `stream: true` → server-sent events relayed chunk by chunk, then `data: [DONE]`) and
 * `GET /v1/models`, for this mesh's members by session (`Authorization: Bearer`), or for
 * a foreign principal by a `model/invoke` invocation in the `x-mesh-ucan` header (a fresh
 * one per call, under a human-signed chain rooted here; the credentials that show its
 * human, if this mesh needs them, in `x-mesh-credentials`). A client that goes away aborts
 * the upstream call. `GET /api/usage`: usage per principal.
 */
export const modelRoutes: FastifyPluginAsync<ModelRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  const { model } = init
  // A chain in the header stands instead of a session; it is verified with the request.
  const guard = async (request: FastifyRequest, reply: FastifyReply) => {
    if (typeof request.headers[MODEL_UCAN_HEADER] === 'string') return
    await app.requireSession.call(app, request, reply)
  }

  const callerOf = async (request: FastifyRequest): Promise<ModelCaller> => {
    const ucan = request.headers[MODEL_UCAN_HEADER]
    if (typeof ucan === 'string') {
      const credentials = credentialsOf(request.headers[MODEL_CREDENTIALS_HEADER])
      return model.chainCaller({ ucan: ucan.trim(), ...(credentials !== undefined ? { credentials } : {}) })
    }
    return model.localCaller(sessionOf(request).did)
  }

  app.get('/v1/models', { onRequest: guard }, async (request, reply) => {
    const caller = await callerOf(request)
    return model.models(caller, abortOnClose(reply))
  })

  app.post(
    '/v1/chat/completions',
    {
      onRequest: guard,
      bodyLimit: init.maxBodyBytes ?? DEFAULT_MAX_BODY,
      schema: { body: chatCompletionBodySchema },
    },
    async (request, reply) => {
      const caller = await callerOf(request)
      const body = request.body as ChatRequest
      const signal = abortOnClose(reply)
      if (body.stream !== true) {
        // the upstream's JSON text, relayed as it came (parsed once for its usage, never re-serialized)
        const { text } = await model.complete(caller, body, signal)
        return reply.type('application/json; charset=utf-8').send(text)
      }
      const chunks = model.stream(caller, body, signal)
      // The first chunk before the headers: a refusal up to it (quota, upstream) is a plain error answer.
      const first = await chunks.next()
      reply.hijack()
      const raw = reply.raw
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      try {
        if (first.done !== true) {
          await send(raw, first.value)
          for await (const data of chunks) await send(raw, data)
        }
        await send(raw, '[DONE]')
      } catch (err) {
        // cut mid-stream: the error as an event (OpenAI's streams do so), then the end
        if (!raw.destroyed) await send(raw, JSON.stringify(toErrorJson(err).body)).catch(() => {})
      } finally {
        await chunks.return(undefined)
        raw.end()
      }
    },
  )

  app.get(
    '/api/usage',
    { onRequest: app.requireSession, schema: { querystring: usageQuerySchema } },
    async (request) => {
      const caller = await model.localCaller(sessionOf(request).did)
      const wanted = request.query.principal
      if (caller.tier > READS_ALL_USAGE && wanted !== undefined && wanted !== caller.did) {
        throw new ForbiddenError('only the architect or a tier-2 principal reads the usage of others', {
          reason: 'tier',
        })
      }
      const principal = caller.tier > READS_ALL_USAGE ? caller.did : wanted
      return {
        usage: model
          .usage(principal)
          .map((record) => ({ ...record, limits: model.quotas.limitsOf(record.principal, record.tier) })),
      }
    },
  )
}

const MAX_CREDENTIALS = 16
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

/** The `x-mesh-credentials` header's VC-JWTs, or MESH_BAD_REQUEST. */
function credentialsOf(header: string | string[] | undefined): string[] | undefined {
  if (header === undefined) return undefined
  const credentials = (Array.isArray(header) ? header.join(',') : header)
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c.length > 0)
  if (credentials.length > MAX_CREDENTIALS || !credentials.every((c) => JWT.test(c))) {
    throw new BadRequestError(
      `${MODEL_CREDENTIALS_HEADER}: at most ${MAX_CREDENTIALS} VC-JWTs, comma-separated`,
      {
        reason: 'credentials',
      },
    )
  }
  return credentials
}

/** A signal aborted when the client goes away before its answer is written whole. */
function abortOnClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('the client went away'))
  })
  return controller.signal
}

/** One server-sent event, waiting for the socket to drain when it is full. */
async function send(raw: FastifyReply['raw'], data: string): Promise<void> {
  if (raw.destroyed) throw new Error('the client went away')
  if (raw.write(`data: ${data}\n\n`)) return
  await new Promise<void>((resolve, reject) => {
    const done = () => {
      raw.off('drain', done)
      raw.off('close', done)
      if (raw.destroyed) reject(new Error('the client went away'))
      else resolve()
    }
    raw.once('drain', done)
    raw.once('close', done)
  })
}
