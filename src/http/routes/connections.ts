import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import {
  actBodySchema,
  connectBodySchema,
  connectionAcceptedSchema,
  connectionIdParams,
  connectionListSchema,
  connectionViewSchema,
  meshUrlQuerySchema,
  meshUrlViewSchema,
  peerListSchema,
  peerParamsSchema,
  peerRefreshBodySchema,
  peerViewSchema,
} from '../../api/index.ts'
import type { ConnectionService } from '../../connections/index.ts'
import { ForbiddenError } from '../../errors.ts'
// reachable by URL (SPEC §10)
import { meshUrlView } from './mesh-url.ts'
import { sessionOf } from './session.ts'

export interface ConnectionRoutesInit {
  connections: ConnectionService
}

/**
 * Connections (SPEC §3), every route behind a session:
 *
 * - `GET /api/connections` → `[ConnectionView]`, newest first; `GET /api/connections/:id`
 * - `POST /api/connections {target: did|multiaddr|url, note?, ucan}` → `202 {id, status}`
 * - `GET /api/connections/resolve?url=` → what the (verified) manifest at `url` says of its mesh (SPEC §10)
 * - `POST /api/connections/:id/accept|decline|disconnect {ucan}` → `202 {id, status}`
 * - `POST /api/connections/:id/pause|resume {ucan}` → `202 {id, status}` (acts
 *   `connection/pause|resume`): while paused nothing syncs with the peer, its outbox holds
 * - `GET /api/federation/peers` → `[PeerView]`
 * - `POST /api/federation/peers/:did/refresh {manifestUrl?}` → `PeerView` (architect only):
 *   refetches the peer's keys from its manifest (when a URL is given) and the DHT
 *   records of its keys, and applies a valid rotation chain (seed 002's "refresh").
 *
 * `ucan` is a human's act (act-gate.ts): a UCAN chain — an invocation addressed to this
 * mesh of `mesh/connect` (`nb.peer` = the target mesh did) or
 * `connection/accept|decline|disconnect` (`nb.connection` = the connection id), with
 * proofs back to this mesh's root delegation to its architect. The session says who is calling; the act is what authorizes,
 * and it is forwarded to the peer (with this mesh's credentials of its humans).
 * 202: this mesh's state has changed; the peer is told through the outbox.
 */
export const connectionRoutes: FastifyPluginAsync<ConnectionRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  const { connections } = init
  const authenticate = app.requireSession

  app.get(
    '/api/connections',
    {
      onRequest: authenticate,
      schema: { response: { 200: connectionListSchema } },
    },
    async () => connections.list(),
  )

  app.get(
    '/api/connections/:id',
    {
      onRequest: authenticate,
      schema: { params: connectionIdParams, response: { 200: connectionViewSchema } },
    },
    async (request) => connections.get(request.params.id),
  )

  app.post(
    '/api/connections',
    {
      onRequest: authenticate,
      schema: { body: connectBodySchema, response: { 202: connectionAcceptedSchema } },
    },
    async (request, reply) => {
      const body = request.body
      const view = await connections.request({
        target: body.target,
        ucan: body.ucan,
        actor: sessionOf(request).did,
        ...(body.note !== undefined ? { note: body.note } : {}),
      })
      void reply.status(202)
      return { id: view.id, status: view.status }
    },
  )

  for (const what of ['accept', 'decline', 'disconnect', 'pause', 'resume'] as const) {
    app.post(
      `/api/connections/:id/${what}`,
      {
        onRequest: authenticate,
        schema: {
          params: connectionIdParams,
          body: actBodySchema,
          response: { 202: connectionAcceptedSchema },
        },
      },
      async (request, reply) => {
        const { id } = request.params
        const input = { ucan: request.body.ucan, actor: sessionOf(request).did }
        const view = await connections[what](id, input)
        void reply.status(202)
        return { id: view.id, status: view.status }
      },
    )
  }

  app.get(
    '/api/federation/peers',
    { onRequest: authenticate, schema: { response: { 200: peerListSchema } } },
    async () => connections.peers(),
  )

  app.post(
    '/api/federation/peers/:did/refresh',
    {
      onRequest: authenticate,
      schema: { params: peerParamsSchema, body: peerRefreshBodySchema, response: { 200: peerViewSchema } },
    },
    async (request) => {
      if (request.session?.role !== 'architect') {
        throw new ForbiddenError('only the architect may refresh a peer', { role: request.session?.role })
      }
      const { did } = request.params
      const body = request.body ?? {}
      return connections.refreshPeer(
        did,
        body.manifestUrl !== undefined ? { manifestUrl: body.manifestUrl } : {},
      )
    },
  )

  // reachable by URL (SPEC §10): `GET /api/connections/resolve?url=` → MeshUrlView
  app.get(
    '/api/connections/resolve',
    {
      onRequest: authenticate,
      schema: { querystring: meshUrlQuerySchema, response: { 200: meshUrlViewSchema } },
    },
    async (request) => meshUrlView(request.query.url),
  )
}
