import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import { rotateBodySchema, rotationResultSchema } from '../../api/index.ts'
import { ForbiddenError } from '../../errors.ts'
import type { KeyRotationResult, KeysView } from '../../keys/index.ts'
import { sessionOf } from './session.ts'

export interface KeyRoutesInit {
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
 *   delegation.
 */
export const keyRoutes: FastifyPluginAsync<KeyRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  const authenticate = app.requireSession
  app.get('/api/keys', { onRequest: authenticate }, async () => init.keys())

  app.post(
    '/api/keys/rotate',
    {
      onRequest: authenticate,
      schema: { body: rotateBodySchema, response: { 200: rotationResultSchema } },
    },
    async (request) => {
      const session = sessionOf(request)
      if (session.role !== 'architect') {
        throw new ForbiddenError('only the architect may rotate the mesh key', { role: session.role })
      }
      return init.rotate({ ucan: request.body.ucan, actor: session.did })
    },
  )
}
