import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import { roomMemberParamsSchema, setRoomRoleBodySchema } from '../../api/index.ts'
import type { RoomManager } from '../../rooms/index.ts'
import { sessionOf } from './session.ts'

export interface RoomMemberRoutesInit {
  rooms: RoomManager
}

/**
 * Room roles (SPEC §9): `PUT /api/rooms/:id/members/:did {role}` — the room's owner or a
 * moderator sets a member's role, sealed by this mesh (rooms/room-roles.ts); anyone
 * else gets MESH_FORBIDDEN, a did that is no member MESH_NOT_FOUND.
 */
export const roomMemberRoutes: FastifyPluginAsync<RoomMemberRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.put(
    '/api/rooms/:id/members/:did',
    {
      onRequest: app.requireSession,
      schema: { params: roomMemberParamsSchema, body: setRoomRoleBodySchema },
    },
    async (request) => {
      const { id, did } = request.params
      return init.rooms.setRole(id, sessionOf(request).did, did, request.body.role)
    },
  )
}
