import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import fastifyWebsocket from '@fastify/websocket'
import type { FastifyPluginAsync } from 'fastify'
import type { WebSocket } from 'ws'
import { roomParamsSchema } from '../../api/index.ts'
import { createYjsEndpoint, YJS_MAX_FRAME_BYTES, type YjsWebsocketInit } from '../../rooms/index.ts'
import { sessionOf } from './session.ts'

export interface YjsRoutesInit extends YjsWebsocketInit {
  /** Route prefix; default '/yjs'. */
  path?: string
}

/**
 * The y-websocket endpoint (SPEC §3, rooms/yjs-websocket.ts says what it speaks):
 * `GET /yjs/:roomId?token=<ticket>` upgraded to a websocket, and
 * `POST /api/rooms/:id/yjs-ticket` (behind a session) → `{ticket, expiresAt}`.
 */
export const yjsRoutes: FastifyPluginAsync<YjsRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  if (!app.hasDecorator('websocketServer')) {
    await app.register(fastifyWebsocket, { options: { maxPayload: YJS_MAX_FRAME_BYTES } })
  }
  const endpoint = createYjsEndpoint(init)
  app.addHook('onClose', async () => endpoint.close())

  // No schema: a bad or missing ticket is answered on the socket (4401), not with a 400.
  app.get<{ Params: { roomId: string }; Querystring: { token?: unknown } }>(
    `${init.path ?? '/yjs'}/:roomId`,
    { websocket: true },
    (socket, request) => {
      // request.raw.socket: the upgraded TCP socket the websocket writes to (corked per turn).
      endpoint.handle(
        socket as unknown as WebSocket,
        request.params.roomId,
        request.query.token,
        request.raw.socket,
      )
    },
  )
  // Membership is checked when the ticket is used, so a ticket says nothing about a room.
  app.post(
    '/api/rooms/:id/yjs-ticket',
    { onRequest: app.requireSession, schema: { params: roomParamsSchema } },
    async (request) => endpoint.issueTicket(sessionOf(request), request.params.id),
  )
}
