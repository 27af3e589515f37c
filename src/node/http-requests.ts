import {
  ENVELOPE_OVERHEAD,
  EnvelopeVerifier,
  HttpRequests,
  MAX_AUDIT_REQUEST_BYTES,
  MAX_REQUEST_BYTES,
  MESH_AUDIT_PROTOCOL,
  MESH_INVOKE_PROTOCOL,
  type PeerRequestHandler,
} from '../connections/index.ts'
import type { MeshError } from '../errors.ts'
import { peerIdFromDid } from '../identity/index.ts'
import type { NodeWiring } from './parts.ts'

interface Carried<A extends { peer: string; error?: MeshError }> extends PeerRequestHandler<A> {
  setHttp(http: HttpRequests<A>): void
}

/**
 * Invocations (`/mesh/invoke/1.0.0`) and audit requests (`/mesh/audit/1.0.0`: heads
 * gossip, consistency, defections) over phase-1 HTTP (SPEC §12): requests posted to
 * `/federation/send` feed each protocol's own handler, and each sender falls back to a
 * peer's HTTP face when libp2p cannot reach it. Started after both protocols and the HTTP
 * federation; a node without them carries these over libp2p only.
 */
export function startHttpRequests(wiring: NodeWiring): void {
  const { parts, init } = wiring
  const carried = [
    [
      parts.find('outbound'),
      MESH_INVOKE_PROTOCOL,
      'invoke',
      MAX_REQUEST_BYTES,
      init.outbound?.maxAnswerBytes,
    ],
    [
      parts.find('auditProtocol'),
      MESH_AUDIT_PROTOCOL,
      'audit',
      MAX_AUDIT_REQUEST_BYTES,
      init.auditProtocol?.maxAnswerBytes,
    ],
  ] as const
  for (const [handler, protocol, kind, maxRequest, maxAnswer] of carried) {
    if (handler === undefined) continue
    carry(wiring, handler as Carried<{ peer: string; error?: MeshError }>, {
      protocol,
      kind,
      maxRequestBytes: maxRequest + ENVELOPE_OVERHEAD,
      // each protocol's own default (invoke 256 KiB, audit 512 KiB)
      maxAnswerBytes: maxAnswer ?? (kind === 'invoke' ? 256 : 512) * 1024,
    })
  }
}

function carry<A extends { peer: string; error?: MeshError }>(
  { parts, logger }: NodeWiring,
  handler: Carried<A>,
  options: { protocol: string; kind: string; maxRequestBytes: number; maxAnswerBytes: number },
): void {
  const federation = parts.find('httpFederation')
  if (federation === undefined) return
  const log = logger.child({ area: 'federation' })
  // Each protocol's envelopes have their own verifier: the protocol id, and room for an answer.
  const envelopes = new EnvelopeVerifier({
    store: parts.get('store'),
    selfDid: () => parts.get('key').did,
    protocols: [options.protocol],
    maxBytes: Math.max(options.maxRequestBytes, options.maxAnswerBytes + ENVELOPE_OVERHEAD),
    logger: log,
  })
  envelopes.start()
  parts.onStop(() => envelopes.stop())
  const http = new HttpRequests<A>(
    {
      key: () => parts.get('key'),
      envelopes,
      route: parts.get('httpRoute'),
      handler: () => handler,
      libp2pConnected: (key: string) => {
        try {
          return parts.get('libp2p').getConnections(peerIdFromDid(key)).length > 0
        } catch {
          return false
        }
      },
      logger: log,
    },
    { protocol: options.protocol, kind: options.kind, maxRequestBytes: options.maxRequestBytes },
  )
  handler.setHttp(http)
  federation.handle(options.protocol, (bytes, peeked) => http.receive(bytes, peeked))
}
