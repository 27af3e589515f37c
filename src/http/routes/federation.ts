import type { FastifyPluginAsync } from 'fastify'
import {
  HTTP_FEDERATION_MAX_BYTES,
  HTTP_FEDERATION_PATHS,
  type HttpFederation,
} from '../../connections/http-federation.ts'
import { HTTP_ROOMS_MAX_BODY } from '../../connections/http-rooms.ts'
import { ERROR_STATUS, type MeshErrorCode } from '../../errors.ts'

export interface FederationRoutesInit {
  federation: Pick<HttpFederation, 'receive'>
  /** Largest body of a handshake POST; default the envelope limit (64 KiB). */
  bodyLimit?: number
  /** Largest body of `/federation/send` (room frames travel there); default HTTP_ROOMS_MAX_BODY. */
  sendBodyLimit?: number
  /** Requests per minute from one source IP, on top of each peer's own token bucket; default 600. */
  perIpPerMinute?: number
}

/**
 * Phase-1 HTTP federation (SPEC §12, seed 003): `POST /connections/request`,
 * `/connections/accepted`, `/connections/declined`, `/connections/disconnect` and
 * `/federation/send`. No session: the body is one signed envelope, its signature the
 * sender's authentication; the response is the signed reply envelope (`connect.ack`,
 * `connect.error`, …), with the status of its code when it is a refusal. A body that is
 * not an envelope (not JSON, no origin) or too large is answered with the plain error
 * shape, as there is no one to sign a reply to.
 */
export const federationRoutes: FastifyPluginAsync<FederationRoutesInit> = async (app, init) => {
  const bodyLimit = init.bodyLimit ?? HTTP_FEDERATION_MAX_BYTES
  const sendBodyLimit = init.sendBodyLimit ?? HTTP_ROOMS_MAX_BODY
  // The envelope is verified over its own bytes: kept raw (this plugin's routes only).
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: Math.max(bodyLimit, sendBodyLimit) },
    (_request, body, done) => {
      done(null, body)
    },
  )
  for (const path of Object.values(HTTP_FEDERATION_PATHS)) {
    app.post(
      path,
      {
        bodyLimit: path === HTTP_FEDERATION_PATHS.send ? sendBodyLimit : bodyLimit,
        config: { rateLimit: { max: init.perIpPerMinute ?? 600, timeWindow: 60_000 } },
      },
      async (request, reply) => {
        const body = request.body
        const bytes = Buffer.isBuffer(body) ? body : Buffer.alloc(0)
        const answer = await init.federation.receive(path, bytes)
        void reply.type('application/json').status(statusOf(answer))
        return Buffer.from(answer)
      },
    )
  }
}

/** 200 for an ack; a refusal's status for a signed `connect.error`. */
function statusOf(answer: Uint8Array): number {
  try {
    const env = JSON.parse(Buffer.from(answer).toString('utf8')) as {
      type?: unknown
      body?: { code?: unknown }
    }
    if (typeof env.type !== 'string' || !env.type.endsWith('.error')) return 200
    const code = env.body?.code
    return typeof code === 'string' && code in ERROR_STATUS ? ERROR_STATUS[code as MeshErrorCode] : 400
  } catch {
    return 200
  }
}
