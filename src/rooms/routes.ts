import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import type { Session } from '../auth/index.ts'
import { BadRequestError, UnauthenticatedError } from '../errors.ts'
import { ROOM_LIMITS } from './room-entries.ts'
import type { RoomManager } from './room-manager.ts'

export interface RoomRoutesInit {
  rooms: RoomManager
  /** Admits a request or throws, setting `request.session` (e.g. `requireSession(sessions)`). */
  authenticate: preHandlerAsyncHookHandler
}

const ROOM_ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' } as const
const ENTRY_ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } as const
const roomParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: ROOM_ID },
} as const
const messageParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'mid'],
  properties: { id: ROOM_ID, mid: ENTRY_ID },
} as const
// Query values arrive as strings (the app does not coerce): limits are matched as digits.
const pageQuery = (cursor: object) =>
  ({
    type: 'object',
    additionalProperties: false,
    properties: { after: cursor, limit: { type: 'string', pattern: '^[0-9]{1,3}$' } },
  }) as const

function sessionOf(request: FastifyRequest): Session {
  if (request.session === undefined) throw new UnauthenticatedError('a session is required')
  return request.session
}

function limitOf(query: { limit?: string }): number | undefined {
  return query.limit === undefined ? undefined : Number(query.limit)
}

/** SPEC §3 rooms: create, list, read, post, react, redact, members, notifications. */
export function registerRoomRoutes(app: FastifyInstance, init: RoomRoutesInit): void {
  const { rooms } = init
  const preHandler = init.authenticate

  app.post(
    '/api/rooms',
    {
      preHandler,
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: ROOM_LIMITS.maxNameLength },
            topic: { type: 'string', maxLength: ROOM_LIMITS.maxTopicLength },
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body as { name: string; topic?: string }
      const record = await rooms.create({ ...body, creator: sessionOf(request).did })
      return reply.status(201).send(record)
    },
  )

  app.get('/api/rooms', { preHandler }, async () => ({ rooms: await rooms.list() }))

  app.get('/api/rooms/:id', { preHandler, schema: { params: roomParams } }, async (request) => {
    const { id } = request.params as { id: string }
    const record = await rooms.record(id)
    const room = await rooms.load(id)
    const me = room.member(sessionOf(request).did)
    return {
      ...record,
      members: room.members().size,
      messages: room.messageCount,
      role: me !== undefined && me.mesh === rooms.ownMesh ? me.role : null,
    }
  })

  app.post('/api/rooms/:id/join', { preHandler, schema: { params: roomParams } }, async (request) => {
    const { id } = request.params as { id: string }
    return rooms.join(id, sessionOf(request).did)
  })

  app.get('/api/rooms/:id/members', { preHandler, schema: { params: roomParams } }, async (request) => {
    const { id } = request.params as { id: string }
    return { members: await rooms.members(id, sessionOf(request).did) }
  })

  app.get(
    '/api/rooms/:id/messages',
    { preHandler, schema: { params: roomParams, querystring: pageQuery(ENTRY_ID) } },
    async (request) => {
      const { id } = request.params as { id: string }
      const query = request.query as { after?: string; limit?: string }
      const limit = limitOf(query)
      return rooms.messages(id, sessionOf(request).did, {
        ...(query.after !== undefined ? { after: query.after } : {}),
        ...(limit !== undefined ? { limit } : {}),
      })
    },
  )

  app.post(
    '/api/rooms/:id/messages',
    {
      preHandler,
      schema: {
        params: roomParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['body'],
          properties: {
            body: { type: 'string', minLength: 1, maxLength: ROOM_LIMITS.maxBodyBytes },
            replyTo: ENTRY_ID,
          },
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string }
      const body = request.body as { body: string; replyTo?: string }
      const result = await rooms.post(id, sessionOf(request).did, body.body, body.replyTo)
      return reply.status(201).send(result)
    },
  )

  app.post(
    '/api/rooms/:id/messages/:mid/reactions',
    {
      preHandler,
      schema: {
        params: messageParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['emoji'],
          properties: { emoji: { type: 'string', minLength: 1, maxLength: ROOM_LIMITS.maxEmojiBytes } },
        },
      },
    },
    async (request, reply) => {
      const { id, mid } = request.params as { id: string; mid: string }
      const { emoji } = request.body as { emoji: string }
      if (Buffer.byteLength(emoji) > ROOM_LIMITS.maxEmojiBytes || /\s/.test(emoji))
        throw new BadRequestError('emoji must be one short token')
      return reply.status(201).send(await rooms.react(id, sessionOf(request).did, mid, emoji))
    },
  )

  app.post(
    '/api/rooms/:id/messages/:mid/redact',
    { preHandler, schema: { params: messageParams } },
    async (request, reply) => {
      const { id, mid } = request.params as { id: string; mid: string }
      const reason = redactReason(request.body)
      return reply.status(201).send(await rooms.redact(id, sessionOf(request).did, mid, reason))
    },
  )

  app.get(
    '/api/me/notifications',
    { preHandler, schema: { querystring: pageQuery({ type: 'string', maxLength: 200 }) } },
    async (request) => {
      const query = request.query as { after?: string; limit?: string }
      const limit = limitOf(query)
      return rooms.notifications(sessionOf(request).did, {
        ...(query.after !== undefined ? { after: query.after } : {}),
        ...(limit !== undefined ? { limit } : {}),
      })
    },
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
