/**
 * The acts a human signs for the federation steps this node carries out (each a UCAN
 * chain invoking the ability of that name, `auth/authority/capabilities.ts`):
 */
export const HUMAN_ACTS = {
  connect: 'mesh/connect',
  accept: 'connection/accept',
  decline: 'connection/decline',
  disconnect: 'connection/disconnect',
  /** The architect rotates the mesh key (with = the mesh's current did). */
  rotateKey: 'mesh/rotate-key',
  /** A human shares a room with a peer mesh (with = the room's resource), or opens a federated DM (with = the mesh). */
  roomShare: 'room/share',
  // paused links (issue 13)
  pause: 'connection/pause',
  resume: 'connection/resume',
  // room lifecycle and consent (SPEC §9)
  roomAccept: 'room/accept',
  roomDecline: 'room/decline',
  roomUnshare: 'room/unshare',
  roomLeave: 'room/leave',
  roomRemove: 'room/remove',
  roomRole: 'room/role',
} as const
export type KnownHumanAct = (typeof HUMAN_ACTS)[keyof typeof HUMAN_ACTS]
