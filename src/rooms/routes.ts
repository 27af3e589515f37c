import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import * as Y from 'yjs'
import type { Session } from '../auth/index.ts'
import { BadRequestError, UnauthenticatedError } from '../errors.ts'
import { ROOM_LIMITS } from './room-entries.ts'
import { ROOM_VISIBILITIES, type RoomManager, type RoomVisibility } from './room-manager.ts'
import type { RoomSync } from './room-sync.ts'

export interface RoomRoutesInit {
  rooms: RoomManager
  /** Federation of rooms: sharing, DMs and sync views; without it those routes are absent. */
  sync?: RoomSync
  /** Admits a request or throws, setting `request.session` (e.g. `requireSession(sessions)`). */
  authenticate: onRequestAsyncHookHandler
}

/** A room id as routes take it (also the ticket route of the y-websocket). */
export const ROOM_ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' } as const
const ENTRY_ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } as const
const DID = { type: 'string', maxLength: 128, pattern: '^did:key:z[1-9A-HJ-NP-Za-km-z]+$' } as const
const UCAN = { type: 'string', minLength: 1, maxLength: 4096 } as const
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

/**
 * SPEC §3 rooms: create, list, read, post, react, redact, members, notifications;
 * with `sync`: share, federated DMs and the catch-up view (`GET /api/rooms/:id/sync`).
 */
export function registerRoomRoutes(app: FastifyInstance, init: RoomRoutesInit): void {
  const { rooms, sync } = init
  const onRequest = init.authenticate
  const federated = (id: string, homeMesh: string) =>
    sync?.isFederated(id, homeMesh) ?? homeMesh !== rooms.ownMesh

  app.post(
    '/api/rooms',
    {
      onRequest,
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: ROOM_LIMITS.maxNameLength },
            topic: { type: 'string', maxLength: ROOM_LIMITS.maxTopicLength },
            // Default `public`: see RoomVisibility.
            visibility: { type: 'string', enum: [...ROOM_VISIBILITIES] },
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body as { name: string; topic?: string; visibility?: RoomVisibility }
      const record = await rooms.create({ ...body, creator: sessionOf(request).did })
      return reply.status(201).send(record)
    },
  )

  app.get('/api/rooms', { onRequest }, async (request) => ({
    rooms: (await rooms.listFor(sessionOf(request).did)).map((r) => ({
      ...r,
      federated: federated(r.id, r.homeMesh),
    })),
  }))

  app.get('/api/rooms/:id', { onRequest, schema: { params: roomParams } }, async (request) => {
    const { id } = request.params as { id: string }
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
        schema: {
          params: roomParams,
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['mesh', 'ucan'],
            properties: { mesh: DID, ucan: UCAN },
          },
        },
      },
      async (request, reply) => {
        const { id } = request.params as { id: string }
        const body = request.body as { mesh: string; ucan: string }
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

    app.get('/api/rooms/:id/sync', { onRequest, schema: { params: roomParams } }, async (request) => {
      const { id } = request.params as { id: string }
      await rooms.access(id, sessionOf(request).did)
      return sync.status(id)
    })

    app.post(
      '/api/me/federated-dms',
      {
        onRequest,
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['with', 'ucan'],
            properties: { with: DID, mesh: DID, ucan: UCAN },
          },
        },
      },
      async (request, reply) => {
        const body = request.body as { with: string; mesh?: string; ucan: string }
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

  app.post('/api/rooms/:id/join', { onRequest, schema: { params: roomParams } }, async (request) => {
    const { id } = request.params as { id: string }
    return rooms.requestJoin(id, sessionOf(request).did)
  })

  app.post(
    '/api/rooms/:id/invite',
    {
      onRequest,
      schema: {
        params: roomParams,
        body: { type: 'object', additionalProperties: false, required: ['did'], properties: { did: DID } },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string }
      const { did } = request.body as { did: string }
      return reply.status(201).send(await rooms.invite(id, sessionOf(request).did, did))
    },
  )

  app.get('/api/rooms/:id/members', { onRequest, schema: { params: roomParams } }, async (request) => {
    const { id } = request.params as { id: string }
    return { members: await rooms.members(id, sessionOf(request).did) }
  })

  app.get(
    '/api/rooms/:id/messages',
    { onRequest, schema: { params: roomParams, querystring: pageQuery(ENTRY_ID) } },
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
      onRequest,
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
      onRequest,
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
    { onRequest, schema: { params: messageParams } },
    async (request, reply) => {
      const { id, mid } = request.params as { id: string; mid: string }
      const reason = redactReason(request.body)
      return reply.status(201).send(await rooms.redact(id, sessionOf(request).did, mid, reason))
    },
  )

  app.get(
    '/api/me/notifications',
    { onRequest, schema: { querystring: pageQuery({ type: 'string', maxLength: 200 }) } },
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
