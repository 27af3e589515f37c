import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify'
import type { Registry } from 'prom-client'
import { ERROR_STATUS, MeshError, type MeshErrorCode, toErrorJson } from '../errors.ts'
import { Counter } from '../kernel/prom.ts' // issue 15: not prom-client's index
import type { Logger } from '../log.ts'
import { lazyValidator } from '../schema.ts'
import { capConnections, connectionServerOptions, type HttpConnectionLimits } from './connection-limits.ts'
import { buildLazySerializer } from './lazy-serializers.ts' // issue 15 (cold start)
import { type OriginGuardInit, registerOriginGuard } from './origin-guard.ts'
import { type RateLimitsInit, registerRateLimits } from './rate-limits.ts'

export interface HttpAppInit {
  logger: Logger
  metrics: Registry
  /** Largest accepted request body in bytes; default 64 KiB. */
  bodyLimit?: number
  /** Timeouts and connection caps (slowloris); defaults in connection-limits.ts. */
  connections?: HttpConnectionLimits
  /** Per-source token buckets by route class (see RateLimitsInit); `false` turns them off; default on. */
  rateLimits?: RateLimitsInit | false
  /** Host and Origin checks (origin-guard.ts); default: loopback names and IP literals only. */
  originGuard?: OriginGuardInit
}

// Fastify's own errors, mapped onto the contract's codes.
const FASTIFY_CODES: Record<string, MeshErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'MESH_TOO_LARGE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MESH_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MESH_BAD_REQUEST',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'MESH_BAD_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MESH_BAD_REQUEST',
  FST_ERR_VALIDATION: 'MESH_BAD_REQUEST',
}

/** Converts anything a route or fastify throws into the single error shape of SPEC §3. */
export function toHttpError(err: unknown): { status: number; body: ReturnType<typeof toErrorJson>['body'] } {
  if (err instanceof MeshError) return toErrorJson(err)
  const fe = err as Partial<FastifyError> & { validation?: unknown; validationContext?: string }
  if (fe.validation !== undefined) {
    const first = Array.isArray(fe.validation) ? fe.validation[0] : undefined
    return toErrorJson(
      new MeshError('MESH_BAD_REQUEST', `invalid ${fe.validationContext ?? 'input'}: ${fe.message}`, {
        validation: first,
      }),
    )
  }
  const code = fe.code !== undefined ? FASTIFY_CODES[fe.code] : undefined
  if (code !== undefined) return toErrorJson(new MeshError(code, fe.message ?? code))
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return toErrorJson(new MeshError('MESH_BAD_REQUEST', fe.message ?? 'bad request'))
  }
  return toErrorJson(err)
}

const validatorCompiler = ({ schema }: { schema: unknown }) => lazyValidator(schema as object)

/**
 * The node's HTTP server: strict schema validation (unknown fields refused, no
 * silent coercion of bodies), one error shape, request metrics.
 */
export function createHttpApp(init: HttpAppInit): FastifyInstance {
  const app = Fastify({
    loggerInstance: init.logger.child({ area: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: init.bodyLimit ?? 64 * 1024,
    return503OnClosing: true,
    ...connectionServerOptions(init.connections),
    // issue 15 (cold start): response serializers compile on a route's first answer; the
    // validator compiler is given here too (the same as set below), so fastify never loads
    // its own ajv compiler
    schemaController: {
      compilersFactory: {
        buildSerializer: buildLazySerializer,
        buildValidator: (() => validatorCompiler) as never,
      },
    },
  })
  capConnections(app.server, { limits: init.connections, metrics: init.metrics, logger: init.logger })
  // First of every request's hooks: a rebound or cross-site request goes no further.
  registerOriginGuard(app, init.originGuard)

  // Route schemas are checked by the one strict ajv of src/schema.ts (no coercion,
  // nothing removed, first error only) and compile on a route's first request, not when
  // the server starts: compiling every route's schemas was ~100 ms of each cold start.
  app.setValidatorCompiler(validatorCompiler)
  if (init.rateLimits !== false) registerRateLimits(app, init.rateLimits ?? {}, init.metrics)

  const requests = new Counter({
    name: 'mesh_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [init.metrics],
  })
  app.addHook('onResponse', async (request, reply) => {
    requests.inc({
      method: request.method,
      route: request.routeOptions.url ?? 'unknown',
      status: reply.statusCode,
    })
  })

  app.setErrorHandler((err, request, reply) => {
    const { status, body } = toHttpError(err)
    const retryAfterMs = body.error.details.retryAfterMs
    if (body.error.code === 'MESH_RATE_LIMITED' && typeof retryAfterMs === 'number') {
      void reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))))
    }
    if (status >= 500) request.log.error({ event: 'http.error', err, url: request.url }, 'request failed')
    else
      request.log.debug({ event: 'http.refused', code: body.error.code, url: request.url }, 'request refused')
    void reply.status(status).send(body)
  })
  app.setNotFoundHandler((request, reply) => {
    void reply.status(ERROR_STATUS.MESH_NOT_FOUND).send({
      error: { code: 'MESH_NOT_FOUND', message: `no route ${request.method} ${request.url}`, details: {} },
    })
  })
  return app
}

// issue 14: a busy HTTP port is one line of MESH_CONFLICT, not EADDRINUSE with a stack
/** `app.listen`, with an address another process holds reported as MESH_CONFLICT (and the app closed). */
export async function listenOrConflict(app: FastifyInstance, host: string, port: number): Promise<void> {
  try {
    await app.listen({ host, port })
  } catch (err) {
    await app.close().catch(() => {})
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
    const shown = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
    throw new MeshError('MESH_CONFLICT', `HTTP address ${shown} is already in use by another process`, {
      host,
      port,
    })
  }
}
