import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import {
  createRoomBodySchema,
  federatedDmBodySchema,
  inviteBodySchema,
  messageParamsSchema,
  messagesQuerySchema,
  notificationsQuerySchema,
  postMessageBodySchema,
  reactionBodySchema,
  roomParamsSchema,
  shareBodySchema,
} from '../../api/index.ts'
import { BadRequestError } from '../../errors.ts'
import { type ForeignAccess, ROOM_LIMITS, type RoomManager, type RoomSync } from '../../rooms/index.ts'
import { Y } from '../../rooms/lazy-yjs.ts' // issue 15: loaded on first use
import { sessionOf } from './session.ts'

export interface RoomRoutesInit {
  rooms: RoomManager
  /** Federation of rooms: sharing, DMs and sync views; without it those routes are absent. */
  sync?: RoomSync
  /** Agents in foreign rooms: invitations of foreign participants (`room/invite`). */
  foreign?: ForeignAccess
  // files in rooms (issue 18): a post's attachments must be files held here, of their size
  attachments?: { check: (files: Array<{ cid: string; size: number }>) => Promise<void> }
}

/** A page request as the client gave it: what it left out, RoomManager defaults. */
function pageOptions(query: { after?: string; limit?: string }): { after?: string; limit?: number } {
  return {
    ...(query.after !== undefined ? { after: query.after } : {}),
    ...(query.limit !== undefined ? { limit: Number(query.limit) } : {}),
  }
}

/**
 * SPEC §3 rooms: create, list, read, post, react, redact, members, notifications;
 * with `sync`: share, federated DMs and the catch-up view (`GET /api/rooms/:id/sync`).
 */
export const roomRoutes: FastifyPluginAsync<RoomRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  const { rooms, sync } = init
  const onRequest = app.requireSession
  const federated = (id: string, homeMesh: string) =>
    sync?.isFederated(id, homeMesh) ?? homeMesh !== rooms.ownMesh

  app.post(
    '/api/rooms',
    {
      onRequest,
      // visibility defaults to `public`: see RoomVisibility.
      schema: { body: createRoomBodySchema },
    },
    async (request, reply) => {
      const body = request.body
      const record = await rooms.create({ ...body, creator: sessionOf(request).did })
      return reply.status(201).send(record)
    },
  )

  app.get('/api/rooms', { onRequest }, async (request) => {
    const viewer = sessionOf(request).did
    const listed = []
    for (const r of await rooms.listFor(viewer)) {
      listed.push({
        ...r,
        federated: federated(r.id, r.homeMesh),
        ...(r.dm === true ? { with: await dmWith(r.id, viewer) } : {}),
      })
    }
    return { rooms: listed }
  })

  /** Who a DM is with, by name: its members other than the viewer (issue 14). */
  const dmWith = async (room: string, viewer: string) =>
    (await rooms.members(room, viewer).catch(() => []))
      .filter((m) => m.did !== viewer)
      .map(({ did, name }) => ({ did, name }))

  app.get('/api/rooms/:id', { onRequest, schema: { params: roomParamsSchema } }, async (request) => {
    const { id } = request.params
    const { record, room, member } = await rooms.access(id, sessionOf(request).did)
    return {
      ...record,
      members: room.members().size,
      messages: room.messageCount,
      role: member?.role ?? null,
      // This mesh as rooms name it (its identity, stable across key rotations).
      ownMesh: rooms.ownMesh,
      federated: federated(id, record.homeMesh),
      shares: sync?.shares(id) ?? [],
      // The replica's Yjs state vector (base64): equal vectors mean equal replicas.
      stateVector: Buffer.from(Y.encodeStateVector(room.doc)).toString('base64'),
    }
  })

  if (sync !== undefined) {
    app.post(
      '/api/rooms/:id/share',
      {
        onRequest,
        schema: { params: roomParamsSchema, body: shareBodySchema },
      },
      async (request, reply) => {
        const { id } = request.params
        const body = request.body
        await rooms.access(id, sessionOf(request).did)
        const shared = await sync.share({
          room: id,
          peer: body.mesh,
          ucan: body.ucan,
          actor: sessionOf(request).did,
        })
        return reply.status(201).send(shared)
      },
    )

    app.get('/api/rooms/:id/sync', { onRequest, schema: { params: roomParamsSchema } }, async (request) => {
      const { id } = request.params
      await rooms.access(id, sessionOf(request).did)
      return sync.status(id)
    })

    app.post(
      '/api/me/federated-dms',
      {
        onRequest,
        schema: { body: federatedDmBodySchema },
      },
      async (request, reply) => {
        const body = request.body
        const dm = await sync.openDm({
          actor: sessionOf(request).did,
          with: body.with,
          ucan: body.ucan,
          ...(body.mesh !== undefined ? { mesh: body.mesh } : {}),
        })
        return reply.status(201).send(dm)
      },
    )
  }

  app.post('/api/rooms/:id/join', { onRequest, schema: { params: roomParamsSchema } }, async (request) => {
    const { id } = request.params
    return rooms.requestJoin(id, sessionOf(request).did)
  })

  app.post(
    '/api/rooms/:id/invite',
    {
      onRequest,
      schema: { params: roomParamsSchema, body: inviteBodySchema },
    },
    async (request, reply) => {
      const { id } = request.params
      const { did, mesh, ucan } = request.body
      // agents in foreign rooms: a foreign participant, under a human-signed room/invite
      if (ucan !== undefined) {
        if (init.foreign === undefined) throw new BadRequestError('this node admits no foreign participants')
        const actor = sessionOf(request).did
        await rooms.access(id, actor)
        return reply
          .status(201)
          .send(await init.foreign.invite(id, actor, { did, ucan, ...(mesh !== undefined ? { mesh } : {}) }))
      }
      return reply.status(201).send(await rooms.invite(id, sessionOf(request).did, did))
    },
  )

  app.get('/api/rooms/:id/members', { onRequest, schema: { params: roomParamsSchema } }, async (request) => {
    const { id } = request.params
    return { members: await rooms.members(id, sessionOf(request).did) }
  })

  app.get(
    '/api/rooms/:id/messages',
    { onRequest, schema: { params: roomParamsSchema, querystring: messagesQuerySchema } },
    async (request) => rooms.messages(request.params.id, sessionOf(request).did, pageOptions(request.query)),
  )

  app.post(
    '/api/rooms/:id/messages',
    {
      onRequest,
      schema: { params: roomParamsSchema, body: postMessageBodySchema },
    },
    async (request, reply) => {
      const { id } = request.params
      const body = request.body
      if (body.attachments !== undefined) await init.attachments?.check(body.attachments) // files in rooms (issue 18)
      const result = await rooms.post(id, sessionOf(request).did, body.body, body.replyTo, body.attachments)
      return reply.status(201).send(result)
    },
  )

  app.post(
    '/api/rooms/:id/messages/:mid/reactions',
    {
      onRequest,
      schema: { params: messageParamsSchema, body: reactionBodySchema },
    },
    async (request, reply) => {
      const { id, mid } = request.params
      const { emoji } = request.body
      if (Buffer.byteLength(emoji) > ROOM_LIMITS.maxEmojiBytes || /\s/.test(emoji))
        throw new BadRequestError('emoji must be one short token')
      return reply.status(201).send(await rooms.react(id, sessionOf(request).did, mid, emoji))
    },
  )

  app.post(
    '/api/rooms/:id/messages/:mid/redact',
    { onRequest, schema: { params: messageParamsSchema } },
    async (request, reply) => {
      const { id, mid } = request.params
      const reason = redactReason(request.body)
      return reply.status(201).send(await rooms.redact(id, sessionOf(request).did, mid, reason))
    },
  )

  app.get(
    '/api/me/notifications',
    { onRequest, schema: { querystring: notificationsQuerySchema } },
    async (request) => rooms.notifications(sessionOf(request).did, pageOptions(request.query)),
  )
}

// The body of a redaction is optional ({} or {reason}), so it is checked here.
function redactReason(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined
  if (typeof body !== 'object' || Array.isArray(body)) throw new BadRequestError('body must be an object')
  const keys = Object.keys(body)
  if (keys.some((k) => k !== 'reason')) throw new BadRequestError('unknown field in body')
  const reason = (body as { reason?: unknown }).reason
  if (reason === undefined) return undefined
  if (typeof reason !== 'string' || reason.length > ROOM_LIMITS.maxReasonLength)
    throw new BadRequestError(`reason must be a string of at most ${ROOM_LIMITS.maxReasonLength} characters`)
  return reason
}
