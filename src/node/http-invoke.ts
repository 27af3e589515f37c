import {
  EnvelopeVerifier,
  HTTP_INVOKE_MAX_REQUEST,
  HttpInvoke,
  MESH_INVOKE_PROTOCOL,
} from '../connections/index.ts'
import { peerIdFromDid } from '../identity/index.ts'
import type { NodeWiring } from './parts.ts'

/**
 * Invocations over phase-1 HTTP (SPEC §12): `/mesh/invoke/1.0.0` requests posted to
 * `/federation/send` feed the invoke protocol's own handler, and the outbound side falls
 * back to a peer's HTTP face when libp2p cannot reach it. Started after the outbound
 * invoke protocol and the HTTP federation; a node without either carries invocations
 * over libp2p only.
 */
export function startHttpInvoke(wiring: NodeWiring): void {
  const { parts, init, logger } = wiring
  const outbound = parts.find('outbound')
  const federation = parts.find('httpFederation')
  if (outbound === undefined || federation === undefined) return
  const log = logger.child({ area: 'federation' })
  // Invoke envelopes have their own verifier: the protocol id, and room for an answer.
  const envelopes = new EnvelopeVerifier({
    store: parts.get('store'),
    selfDid: () => parts.get('key').did,
    protocols: [MESH_INVOKE_PROTOCOL],
    maxBytes: Math.max(HTTP_INVOKE_MAX_REQUEST, (init.outbound?.maxAnswerBytes ?? 256 * 1024) + 4096),
    logger: log,
  })
  envelopes.start()
  parts.onStop(() => envelopes.stop())
  const http = new HttpInvoke(
    {
      key: () => parts.get('key'),
      envelopes,
      route: parts.get('httpRoute'),
      handler: () => parts.get('outbound'),
      libp2pConnected: (key) => {
        try {
          return parts.get('libp2p').getConnections(peerIdFromDid(key)).length > 0
        } catch {
          return false
        }
      },
      logger: log,
    },
    { protocol: MESH_INVOKE_PROTOCOL },
  )
  outbound.setHttp(http)
  federation.handle(MESH_INVOKE_PROTOCOL, (bytes, peeked) => http.receive(bytes, peeked))
}
