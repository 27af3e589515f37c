import {
  EnvelopeVerifier,
  HTTP_ROOMS_MAX_BODY,
  HttpFederation,
  HttpRooms,
  RateLimiter,
} from '../connections/index.ts'
import { peerIdFromDid } from '../identity/index.ts'
import { MESH_ROOMS_PROTOCOL } from '../rooms/index.ts'
import type { NodeWiring } from './parts.ts'

/**
 * Phase-1 HTTP federation (SPEC §12): the HTTP face over the connection service's own
 * handler, and room links tunnelled over HTTP for peers libp2p cannot reach. Started
 * after the room sync (a tunnel is a room link) and before the HTTP server (its routes).
 */
export async function startHttpFederation(wiring: NodeWiring): Promise<void> {
  const { parts, init, logger } = wiring
  const log = logger.child({ area: 'federation' })
  const store = parts.get('store')
  const peers = parts.get('httpPeers')
  const fallback = init.connections?.httpFallback ?? {}
  // Room frames are signed envelopes of the rooms protocol, checked by their own verifier.
  const envelopes = new EnvelopeVerifier({
    store,
    selfDid: () => parts.get('key').did,
    protocols: [MESH_ROOMS_PROTOCOL],
    maxBytes: HTTP_ROOMS_MAX_BODY,
    logger: log,
  })
  envelopes.start()
  parts.onStop(() => envelopes.stop())
  const rooms = new HttpRooms(
    {
      key: () => parts.get('key'),
      envelopes,
      // A poll a second and the frames a busy room sends: more than the handshake's bucket.
      limiter: new RateLimiter({ capacity: 120, refillPerSecond: 40, ...fallback.roomsRateLimit }),
      peers,
      route: parts.get('httpRoute'),
      rooms: () => parts.find('roomSync'),
      libp2pConnected: (key) => {
        try {
          return parts.get('libp2p').getConnections(peerIdFromDid(key)).length > 0
        } catch {
          return false
        }
      },
      logger: log,
    },
    {
      protocol: MESH_ROOMS_PROTOCOL,
      ...(fallback.pollIntervalMs !== undefined ? { pollIntervalMs: fallback.pollIntervalMs } : {}),
    },
  )
  rooms.start()
  parts.hold('httpRooms', rooms)
  parts.set(
    'httpFederation',
    new HttpFederation({
      receive: (bytes, remoteDid) => parts.get('connections').receive(bytes, remoteDid),
      protocols: { [MESH_ROOMS_PROTOCOL]: (bytes, peeked) => rooms.receive(bytes, peeked) },
      peers,
      logger: log,
    }),
  )
}
