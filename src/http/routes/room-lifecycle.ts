import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import {
  invitationParamsSchema,
  lifecycleActBodySchema,
  roomMemberParamsSchema,
  roomParamsSchema,
  unshareBodySchema,
} from '../../api/index.ts'
import type { RoomManager, RoomSync } from '../../rooms/index.ts'
import { sessionOf } from './session.ts'

export interface RoomLifecycleRoutesInit {
  rooms: RoomManager
  sync: RoomSync
}

/**
 * Room lifecycle and consent (SPEC §9): the invitations this mesh received
 * (`GET /api/rooms/invitations`), a human's answer to one (`room/accept`,
 * `room/decline`), the home mesh's unshare (`room/unshare`) and the receiving mesh's
 * leave (`room/leave`). Each decision is a human-signed chain checked by the act gate.
 */
export const roomLifecycleRoutes: FastifyPluginAsync<RoomLifecycleRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  const { rooms, sync } = init
  const onRequest = app.requireSession

  app.get('/api/rooms/invitations', { onRequest }, async () => ({ invitations: sync.invitations() }))

  for (const answer of ['accept', 'decline'] as const) {
    app.post(
      `/api/rooms/invitations/:id/${answer}`,
      { onRequest, schema: { params: invitationParamsSchema, body: lifecycleActBodySchema } },
      async (request) =>
        sync.answer({
          id: request.params.id,
          answer,
          ucan: request.body.ucan,
          actor: sessionOf(request).did,
        }),
    )
  }

  app.post(
    '/api/rooms/:id/unshare',
    { onRequest, schema: { params: roomParamsSchema, body: unshareBodySchema } },
    async (request) => {
      const { id } = request.params
      await rooms.access(id, sessionOf(request).did)
      return sync.unshare({
        room: id,
        peer: request.body.mesh,
        ucan: request.body.ucan,
        actor: sessionOf(request).did,
      })
    },
  )

  app.delete(
    '/api/rooms/:id/members/:did',
    { onRequest, schema: { params: roomMemberParamsSchema, body: lifecycleActBodySchema } },
    async (request, reply) => {
      const { id, did } = request.params
      await sync.removeMember({ room: id, did, ucan: request.body.ucan, actor: sessionOf(request).did })
      return reply.status(204).send()
    },
  )

  app.post(
    '/api/rooms/:id/leave',
    { onRequest, schema: { params: roomParamsSchema, body: lifecycleActBodySchema } },
    async (request) => {
      const { id } = request.params
      await rooms.access(id, sessionOf(request).did)
      return {
        shares: await sync.leave({ room: id, ucan: request.body.ucan, actor: sessionOf(request).did }),
      }
    },
  )
}
