import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
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

// A UCAN chain (base64url CAR, up to an envelope proof's 16 KiB) or an interim act.
const UCAN = { type: 'string', minLength: 1, maxLength: 16 * 1024, pattern: '^[A-Za-z0-9_-]+$' } as const

const resultSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['identity', 'previous', 'did', 'peerId', 'seq', 'announcedTo'],
  properties: {
    identity: { type: 'string' },
    previous: { type: 'string' },
    did: { type: 'string' },
    peerId: { type: 'string' },
    seq: { type: 'integer' },
    announcedTo: { type: 'array', items: { type: 'string' } },
  },
} as const

/**
 * The mesh's own keys, behind a session:
 *
 * - `GET /api/keys` → `{identity, current, keys, rotations}`
 * - `POST /api/keys/rotate {ucan}` → `200 KeyRotationResult` — architect only; `ucan` is
 *   a `mesh/rotate-key` invocation on the mesh's current did with a chain from its root
 *   delegation (or, while accepted, the architect's interim act with = the current did).
 */
export function registerKeyRoutes(app: FastifyInstance, init: KeyRoutesInit): void {
  const { authenticate } = init
  app.get('/api/keys', { onRequest: authenticate }, async () => init.keys())

  app.post(
    '/api/keys/rotate',
    {
      onRequest: authenticate,
      schema: {
        body: { type: 'object', additionalProperties: false, required: ['ucan'], properties: { ucan: UCAN } },
        response: { 200: resultSchema },
      },
    },
    async (request) => {
      const session = request.session
      if (session === undefined) throw new UnauthenticatedError('a session is required')
      if (session.role !== 'architect') {
        throw new ForbiddenError('only the architect may rotate the mesh key', { role: session.role })
      }
      return init.rotate({ ucan: (request.body as { ucan: string }).ucan, actor: session.did })
    },
  )
}
