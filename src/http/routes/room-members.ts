import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import { roomMemberParamsSchema, setRoomRoleBodySchema } from '../../api/index.ts'
import { BadRequestError } from '../../errors.ts'
import type { RoomManager, RoomSync } from '../../rooms/index.ts'
import { sessionOf } from './session.ts'

export interface RoomMemberRoutesInit {
  rooms: RoomManager
  // room lifecycle (SPEC §9): the `room/role` act is checked by the room sync's act gate
  sync?: RoomSync
}

/**
 * Room roles (SPEC §9): `PUT /api/rooms/:id/members/:did {role, ucan}` (act `room/role`) — the room's owner or a
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
      const { role, ucan } = request.body
      if (init.sync === undefined) throw new BadRequestError('this node checks no room acts')
      return init.sync.setRole({ room: id, did, role, ucan, actor: sessionOf(request).did })
    },
  )
}
