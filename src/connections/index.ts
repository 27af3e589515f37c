/**
 * Connections: the federation handshake between meshes (`/mesh/connect/1.0.0`), the
 * persisted connection state machine, the durable outbox, signed envelopes and human
 * acts, the federation policy and the rejected log (their HTTP routes: src/http/routes/).
 */

export { type RejectedEntry, RejectedLog, type RejectedLogInit } from '../audit/index.ts'
// accountability across meshes (SPEC §11): /mesh/audit/1.0.0
export {
  AuditProtocol,
  type AuditProtocolComponents,
  type AuditProtocolInit,
  MAX_AUDIT_REQUEST_BYTES,
  MESH_AUDIT_PROTOCOL,
  type PeerRows,
} from './audit-protocol.ts'
export {
  CONNECT_MESSAGE,
  CONNECT_PROTOCOLS,
  CONNECTION_STATUSES,
  type ConnectAckBody,
  type ConnectAnswerBody,
  type ConnectDisconnectBody,
  type ConnectErrorBody,
  type ConnectionStatus,
  type ConnectMessageType,
  type ConnectRequestBody,
  checkBody,
  classifyDeliveryError,
  DELIVERY_ERROR_KINDS,
  DeliveryError,
  type DeliveryErrorKind,
  exchange,
  type KeyRotatedBody,
  MESH_CONNECT_PROTOCOL,
  serveExchange,
} from './connect-protocol.ts'
export {
  type ActInput,
  type ConnectInput,
  type ConnectionRecord,
  ConnectionService,
  type ConnectionServiceComponents,
  type ConnectionServiceInit,
  type ConnectionView,
  type ConnectionViewStatus,
  type PeerView,
} from './connection-service.ts'
export {
  createEnvelope,
  ENVELOPE_LIMITS,
  ENVELOPE_MAX_SKEW_MS,
  type Envelope,
  EnvelopeVerifier,
  type EnvelopeVerifierInit,
  encodeEnvelope,
  newEnvelopeId,
} from './envelope.ts'
// phase-1 HTTP federation (SPEC §12)
export {
  HTTP_FEDERATION_MAX_BYTES,
  HTTP_FEDERATION_PATHS,
  HttpFederation,
  type HttpFederationComponents,
  HttpPeerBook,
  HttpRoute,
  type HttpRouteInit,
  httpBaseOf,
  httpPathOf,
  type PeekedEnvelope,
  peekEnvelope,
} from './http-federation.ts'
// invocations and audit requests over phase-1 HTTP (SPEC §12)
export {
  ENVELOPE_OVERHEAD,
  HttpRequests,
  type HttpRequestsComponents,
  type HttpRequestsInit,
  type PeerRequestHandler,
} from './http-requests.ts'
export {
  HTTP_ROOMS_LIMITS,
  HTTP_ROOMS_MAX_BODY,
  HttpRooms,
  type HttpRoomsComponents,
  type HttpRoomsInit,
  ROOM_ERROR_TYPE,
  ROOM_FRAMES_TYPE,
} from './http-rooms.ts'
// Outbound invocation over libp2p
export {
  InvokeProtocol,
  type InvokeProtocolComponents,
  type InvokeProtocolInit,
  MAX_REQUEST_BYTES,
  MESH_INVOKE_PROTOCOL,
  type SendOptions,
} from './invoke-protocol.ts'
export { Outbox, type OutboxHandler, type OutboxInit, type OutboxItem } from './outbox.ts'
// invocations and audit requests over phase-1 HTTP (SPEC §12)
export type { RequestsOverHttp } from './peer-request.ts'
export { keyFingerprint, PeerBook, type PeerError, type PeerRecord } from './peers.ts'
export {
  DEFAULT_POLICY,
  type FederationPolicy,
  POLICY_MODES,
  type PolicyChange,
  type PolicyMode,
  type PolicyPatch,
  PolicyService,
  validatePolicy,
} from './policy.ts'
export { RateLimiter, type RateLimiterInit } from './rate-limiter.ts'
