import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { rotateBodySchema, rotationResultSchema } from '../api/index.ts'
import { ForbiddenError, UnauthenticatedError } from '../errors.ts'
import type { RotationRecord } from '../identity/index.ts'

/** What a key rotation did, as `POST /api/keys/rotate` answers it. */
export interface KeyRotationResult {
  /** The mesh's identity: its genesis did, which never changes. */
  identity: string
  previous: string
  did: string
  peerId: string
  seq: number
  /** Peers the rotation was queued for (delivered through the outbox). */
  announcedTo: string[]
}

/** The mesh's keys, as `GET /api/keys` shows them. */
export interface KeysView {
  identity: string
  current: string
  keys: string[]
  rotations: RotationRecord[]
}

export interface KeyRoutesInit {
  /** An onRequest hook that sets `request.session` or throws. */
  authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  keys: () => KeysView
  /** Verifies the architect's act `mesh/rotate-key` (with = the current did) and rotates. */
  rotate: (input: { ucan: string; actor: string }) => Promise<KeyRotationResult>
}

/**
 * The mesh's own keys, behind a session:
 *
 * - `GET /api/keys` → `{identity, current, keys, rotations}`
 * - `POST /api/keys/rotate {ucan}` → `200 KeyRotationResult` — architect only; `ucan` is
 *   a `mesh/rotate-key` invocation on the mesh's current did with a chain from its root
 *   delegation (or, while accepted, the architect's interim act with = the current did).
 */
export function registerKeyRoutes(fastify: FastifyInstance, init: KeyRoutesInit): void {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  const { authenticate } = init
  app.get('/api/keys', { onRequest: authenticate }, async () => init.keys())

  app.post(
    '/api/keys/rotate',
    {
      onRequest: authenticate,
      schema: { body: rotateBodySchema, response: { 200: rotationResultSchema } },
    },
    async (request) => {
      const session = request.session
      if (session === undefined) throw new UnauthenticatedError('a session is required')
      if (session.role !== 'architect') {
        throw new ForbiddenError('only the architect may rotate the mesh key', { role: session.role })
      }
      return init.rotate({ ucan: request.body.ucan, actor: session.did })
    },
  )
}
