import type { ConnectionView } from '../../../api/index.ts'

/**
 * What the Browse tab offers for a mesh, by the connection this mesh has with it
 * (issue 14: the request button matches the connection state). A connection that ended
 * (declined, disconnected) may be asked for again: a new request is a new connection.
 */
export type BrowseAction =
  | { kind: 'request' }
  | { kind: 'connected'; label: string }
  | { kind: 'asked'; label: string }
  | { kind: 'answer'; label: string }

export function browseAction(connections: ConnectionView[], did: string): BrowseAction {
  const live = connections.filter(
    (c) =>
      (c.peerDid === did || c.peerKeyDid === did) && c.status !== 'declined' && c.status !== 'disconnected',
  )
  const current = live[0]
  if (current === undefined) return { kind: 'request' }
  if (current.status === 'pending')
    return current.direction === 'outbound'
      ? { kind: 'asked', label: 'Request sent' }
      : { kind: 'answer', label: 'They asked: see Requests' }
  return { kind: 'connected', label: current.status === 'paused' ? 'Connected (paused)' : 'Connected' }
}
