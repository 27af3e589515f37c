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
