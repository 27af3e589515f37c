import type { FastifyInstance } from 'fastify'
import { ForbiddenError, UnauthenticatedError } from '../errors.ts'
import type { ConnectionService } from './connection-service.ts'
import type { Authenticate } from './policy-routes.ts'

export interface ConnectionRoutesInit {
  connections: ConnectionService
  authenticate: Authenticate
}

// A UCAN chain (base64url CAR, up to an envelope proof's 16 KiB) or an interim act.
const UCAN = { type: 'string', minLength: 1, maxLength: 16 * 1024, pattern: '^[A-Za-z0-9_-]+$' } as const
const ID_PARAMS = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 64 } },
} as const

const errorShape = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['kind', 'code', 'message', 'at'],
  properties: {
    kind: { type: 'string' },
    code: { type: 'string' },
    message: { type: 'string' },
    at: { type: 'string' },
  },
} as const

const nullableString = { type: ['string', 'null'] } as const

export const connectionViewSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'id',
    'peerDid',
    'peerKeyDid',
    'peerKeyFingerprint',
    'peerName',
    'direction',
    'status',
    'agreementVersion',
    'lastSeen',
    'lastError',
    'eventsSent24h',
    'eventsReceived24h',
    'note',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    id: { type: 'string' },
    peerDid: { type: 'string' },
    peerKeyDid: { type: 'string' },
    peerKeyFingerprint: { type: 'string' },
    peerName: nullableString,
    direction: { type: 'string', enum: ['inbound', 'outbound'] },
    status: { type: 'string', enum: ['pending', 'accepted', 'declined', 'disconnected', 'degraded'] },
    agreementVersion: { type: 'integer' },
    lastSeen: nullableString,
    lastError: errorShape,
    eventsSent24h: { type: 'integer' },
    eventsReceived24h: { type: 'integer' },
    note: nullableString,
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const

const peerViewSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'did',
    'name',
    'architectDid',
    'keys',
    'keyFingerprint',
    'multiaddrs',
    'protocolVersions',
    'lastSeen',
    'lastError',
    'eventsSent24h',
    'eventsReceived24h',
    'state',
    'connectionId',
    'agreementVersion',
    'queued',
  ],
  properties: {
    did: { type: 'string' },
    name: nullableString,
    architectDid: nullableString,
    keys: { type: 'array', items: { type: 'string' } },
    keyFingerprint: { type: 'string' },
    multiaddrs: { type: 'array', items: { type: 'string' } },
    protocolVersions: { type: 'array', items: { type: 'string' } },
    lastSeen: nullableString,
    lastError: errorShape,
    eventsSent24h: { type: 'integer' },
    eventsReceived24h: { type: 'integer' },
    state: { type: 'string' },
    connectionId: nullableString,
    agreementVersion: { type: 'integer' },
    queued: { type: 'integer' },
  },
} as const

const accepted = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'status'],
  properties: { id: { type: 'string' }, status: { type: 'string' } },
} as const

/**
 * Connections (SPEC §3), every route behind a session:
 *
 * - `GET /api/connections` → `[ConnectionView]`, newest first; `GET /api/connections/:id`
 * - `POST /api/connections {target: did|multiaddr, note?, ucan}` → `202 {id, status}`
 * - `POST /api/connections/:id/accept|decline|disconnect {ucan}` → `202 {id, status}`
 * - `GET /api/federation/peers` → `[PeerView]`
 * - `POST /api/federation/peers/:did/refresh {manifestUrl?}` → `PeerView` (architect only):
 *   refetches the peer's keys from its manifest (when a URL is given) and the DHT
 *   records of its keys, and applies a valid rotation chain (seed 002's "refresh").
 *
 * `ucan` is a human's act (act-gate.ts): a UCAN chain — an invocation addressed to this
 * mesh of `mesh/connect` (`nb.peer` = the target mesh did) or
 * `connection/accept|decline|disconnect` (`nb.connection` = the connection id), with
 * proofs back to this mesh's root delegation to its architect — or, while accepted, the
 * architect's interim act. The session says who is calling; the act is what authorizes,
 * and it is forwarded to the peer (with this mesh's credentials of its humans).
 * 202: this mesh's state has changed; the peer is told through the outbox.
 */
export function registerConnectionRoutes(app: FastifyInstance, init: ConnectionRoutesInit): void {
  const { connections, authenticate } = init
  const actor = (request: { session?: { did: string } }): string => {
    if (request.session === undefined) throw new UnauthenticatedError('a session is required')
    return request.session.did
  }

  app.get(
    '/api/connections',
    {
      onRequest: authenticate,
      schema: { response: { 200: { type: 'array', items: connectionViewSchema } } },
    },
    async () => connections.list(),
  )

  app.get(
    '/api/connections/:id',
    { onRequest: authenticate, schema: { params: ID_PARAMS, response: { 200: connectionViewSchema } } },
    async (request) => connections.get((request.params as { id: string }).id),
  )

  app.post(
    '/api/connections',
    {
      onRequest: authenticate,
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['target', 'ucan'],
          properties: {
            target: { type: 'string', minLength: 1, maxLength: 512 },
            note: { type: 'string', maxLength: 1024 },
            ucan: UCAN,
          },
        },
        response: { 202: accepted },
      },
    },
    async (request, reply) => {
      const body = request.body as { target: string; note?: string; ucan: string }
      const view = await connections.request({
        target: body.target,
        ucan: body.ucan,
        actor: actor(request),
        ...(body.note !== undefined ? { note: body.note } : {}),
      })
      void reply.status(202)
      return { id: view.id, status: view.status }
    },
  )

  for (const what of ['accept', 'decline', 'disconnect'] as const) {
    app.post(
      `/api/connections/:id/${what}`,
      {
        onRequest: authenticate,
        schema: {
          params: ID_PARAMS,
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['ucan'],
            properties: { ucan: UCAN },
          },
          response: { 202: accepted },
        },
      },
      async (request, reply) => {
        const { id } = request.params as { id: string }
        const input = { ucan: (request.body as { ucan: string }).ucan, actor: actor(request) }
        const view = await connections[what](id, input)
        void reply.status(202)
        return { id: view.id, status: view.status }
      },
    )
  }

  app.get(
    '/api/federation/peers',
    { onRequest: authenticate, schema: { response: { 200: { type: 'array', items: peerViewSchema } } } },
    async () => connections.peers(),
  )

  app.post(
    '/api/federation/peers/:did/refresh',
    {
      onRequest: authenticate,
      schema: {
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['did'],
          properties: {
            did: { type: 'string', maxLength: 128, pattern: '^did:key:z[1-9A-HJ-NP-Za-km-z]+$' },
          },
        },
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { manifestUrl: { type: 'string', minLength: 1, maxLength: 2048 } },
        },
        response: { 200: peerViewSchema },
      },
    },
    async (request) => {
      if (request.session?.role !== 'architect') {
        throw new ForbiddenError('only the architect may refresh a peer', { role: request.session?.role })
      }
      const { did } = request.params as { did: string }
      const body = (request.body ?? {}) as { manifestUrl?: string }
      return connections.refreshPeer(
        did,
        body.manifestUrl !== undefined ? { manifestUrl: body.manifestUrl } : {},
      )
    },
  )
}
