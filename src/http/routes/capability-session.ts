import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import { capabilitySessionBodySchema } from '../../api/index.ts'
import { ForbiddenError } from '../../errors.ts'
import {
  CAPABILITY_TOKEN_PREFIX,
  type CapabilitySession,
  type ForeignAccess,
  type RoomAbility,
} from '../../rooms/index.ts'
import { bearerToken } from './session.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the capability guard: the request runs under a capability session (one room). */
    capabilitySession?: CapabilitySession
  }
}

/**
 * The routes a capability session reaches (all on its own room, `:id`), and what each
 * needs of its chain. A y-websocket ticket needs both: a socket both reads and writes.
 */
const ROOM_ROUTES: Readonly<Record<string, readonly RoomAbility[]>> = {
  'GET /api/rooms/:id': ['room/read'],
  'GET /api/rooms/:id/messages': ['room/read'],
  'GET /api/rooms/:id/members': ['room/read'],
  'POST /api/rooms/:id/messages': ['room/post'],
  'POST /api/rooms/:id/yjs-ticket': ['room/read', 'room/post'],
}

/**
 * The capability guard, a root `onRequest` hook (before every route's own
 * `requireSession`): a bearer token of a capability session is admitted only on its
 * room's routes that its chain grants (MESH_FORBIDDEN elsewhere: another room, any other
 * route, an ability the chain lacks), until the chain ends (MESH_UNAUTHENTICATED) or is
 * revoked (MESH_UCAN_INVALID). It then runs as the session of its principal, which
 * `requireSession` lets through. A sign-in token is left to `requireSession`.
 */
export function registerCapabilityGuard(app: FastifyInstance, access: ForeignAccess): void {
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const token = bearerToken(request)
    if (token === undefined || !token.startsWith(CAPABILITY_TOKEN_PREFIX)) return
    const limits = request.server.meshRateLimits
    let session: CapabilitySession
    try {
      session = await access.authenticate(token)
    } catch (err) {
      await limits?.authenticationFailed(request)
      throw err
    }
    const route = `${request.method} ${request.routeOptions.url ?? ''}`
    const needs = ROOM_ROUTES[route]
    if (needs === undefined) {
      throw new ForbiddenError('a capability session reaches only its room', {
        reason: 'capability-session',
        route,
      })
    }
    const room = (request.params as { id?: unknown } | undefined)?.id
    if (room !== session.room) {
      throw new ForbiddenError('this capability session is for another room', {
        reason: 'room',
        room: session.room,
      })
    }
    const missing = needs.filter((can) => !session.can.includes(can))
    if (missing.length > 0) {
      throw new ForbiddenError(`the chain of this session does not grant ${missing.join(', ')}`, {
        reason: 'capability',
        missing,
        can: session.can,
      })
    }
    request.capabilitySession = session
    request.session = { id: session.id, did: session.did, role: 'agent', expiresAt: session.expiresAt }
    await limits?.authenticated(request)
  })
}

/** `POST /api/session/ucan {ucan, credentials?, presentation?}` → a capability session (SPEC §8, way 2). */
export const capabilitySessionRoutes: FastifyPluginAsync<{ access: ForeignAccess }> = async (
  fastify,
  init,
) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.post('/api/session/ucan', { schema: { body: capabilitySessionBodySchema } }, async (request) =>
    init.access.openSession(request.body),
  )
}
