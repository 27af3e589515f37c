// Shapes of the node's HTTP API (README "HTTP API", SPEC §3), as the console reads them.

export interface Health {
  status: string
  did: string
  peerId: string
  multiaddrs: string[]
  version: string
}

export interface Manifest {
  name: string
  did: string
  version?: string
}

export interface Me {
  did: string
  role: string
}

export interface PublicMesh {
  did: string
  name: string
  peerId?: string
  multiaddrs: string[]
  status: 'online' | 'idle' | 'offline'
  members: number
  bots: number
  rooms?: number
  version?: string
  protocolVersions?: string[]
  lastHeartbeat?: string | number | null
}

export interface LinkError {
  kind: string
  code: string
  message: string
  at: string
}

export type ConnectionStatus = 'pending' | 'accepted' | 'declined' | 'disconnected' | 'degraded'

export interface Connection {
  id: string
  peerDid: string
  peerKeyDid?: string
  peerKeyFingerprint?: string
  peerName: string | null
  direction: 'inbound' | 'outbound'
  status: ConnectionStatus
  agreementVersion: number
  lastSeen: string | null
  lastError: LinkError | null
  eventsSent24h: number
  eventsReceived24h: number
  note: string | null
  createdAt: string
  updatedAt: string
}

export interface Peer {
  did: string
  name: string | null
  architectDid: string | null
  keys: string[]
  keyFingerprint: string
  multiaddrs: string[]
  protocolVersions: string[]
  lastSeen: string | null
  lastError: LinkError | null
  eventsSent24h: number
  eventsReceived24h: number
  state: string
  connectionId: string | null
  agreementVersion: number
  queued: number
}

export interface Policy {
  mode: 'open' | 'allowlist' | 'closed'
  allow: string[]
  deny: string[]
  autoAccept: boolean
  maxForeignParticipantsPerRoom: number
  maxBackfillEventsPerRequest: number
}

export interface RejectedEntry {
  id: string
  at: string
  peer: string | null
  kind: string
  code: string
  reason: string
  details: Record<string, unknown>
}

export interface AuditRow {
  seq: number
  ts: string
  action: string
  actor: string | null
  subject: string | null
  details: Record<string, unknown>
  hash: string
  signer: string
}

export interface AuditReport {
  ok: boolean
  count: number
  head: { seq: number; hash: string } | null
  problems: Array<{ seq: number; kind: string; message: string }>
}

export interface TrustRecord {
  did: string
  scope: 'principal' | 'mesh'
  local: boolean
  kind?: string
  role?: string
  mesh?: string
  tier: number
  accepted: number
  refused: number
  score: number
  lastReason?: string
  lastInteractionAt?: string
  tierReason?: string
}

export interface Room {
  id: string
  name: string
  topic: string
  homeMesh: string
  createdBy: string
  createdAt: string
  federated: boolean
  /** `public`: every local principal may find and join it; `invite`: members only. */
  visibility: 'public' | 'invite'
  dm?: true
}

export interface RoomDetail extends Room {
  members: number
  messages: number
  role: string | null
  shares: Array<{ room: string; peer: string; direction: 'out' | 'in'; createdAt: string }>
}

export interface Member {
  did: string
  name: string
  localId: string
  mesh: string
  meshName: string
  role: string
  tier: number
  local: boolean
}

export interface Transfer {
  entries: number
  bytes: number
  chunks: number
  entriesDone: number
  bytesDone: number
  chunksDone: number
  startedAt: string | null
  doneAt: string | null
}

export interface RoomSync {
  room: string
  homeMesh: string
  federated: boolean
  messages: number
  caughtUp: boolean
  peers: Array<{
    peer: string
    name: string | null
    direction: 'out' | 'in'
    link: 'open' | 'closed'
    lastError: { code: string; message: string; at: string } | null
    behind: { entries: number; bytes: number } | null
    incoming: Transfer
    outgoing: Transfer
    caughtUp: boolean
  }>
}

export interface Notification {
  id: string
  kind: 'mention'
  room: string
  roomName: string
  message: string
  author: string
  authorDid: string
  mesh: string
  body: string
  ts: number
}
