import { DEFAULT_POLICY } from '../connections/index.ts'
import type { KeysView } from '../keys/index.ts'
import { type AcceptedPeer, RoomManager, RoomSync } from '../rooms/index.ts'
import { federationSettings } from './connections.ts'
import type { NodeWiring } from './parts.ts'
import type { ReputationFeed } from './reputation.ts'

export interface RoomsWiring extends NodeWiring {
  reputation: ReputationFeed
  keys: () => KeysView
}

/** Rooms: authenticated Yjs documents and their store; reputation watches their updates. */
export async function startRooms(wiring: RoomsWiring): Promise<void> {
  const { parts, init } = wiring
  const info = parts.get('info')
  const members = parts.get('members')
  const rooms = new RoomManager({
    store: parts.get('store'),
    // Getters: rooms name the mesh by its identity and seal with whatever key it holds now.
    key: () => parts.get('key'),
    ownKeys: wiring.keys,
    peerKeys: () => parts.get('peerBook').list(),
    meshName: info.name,
    logger: wiring.logger,
    rejected: parts.get('rejected'),
    onRejected: wiring.reputation.roomRefused,
    maxForeignParticipantsPerRoom: () => parts.find('federation')?.maxForeignParticipantsPerRoom ?? 50,
    ...(init.rooms?.compactEvery !== undefined ? { compactEvery: init.rooms.compactEvery } : {}),
    // lazy rooms (issue 15)
    ...(init.rooms?.roomIdleUnloadMs !== undefined ? { roomIdleUnloadMs: init.rooms.roomIdleUnloadMs } : {}),
    localPrincipal: async (did) => members.localPrincipal(did),
    // kinds across meshes: member entries carry the principal's membership credential
    credentialOf: async (did) =>
      parts
        .find('memberService')
        ?.credential(did)
        .catch(() => undefined),
  })
  await parts.add('rooms', rooms)
  wiring.reputation.watchRooms(rooms)
}

/** Shared rooms: shares, links to peer meshes (`/mesh/rooms/1.0.0`), catch-up progress. */
export async function startRoomSync({ parts, init, logger }: NodeWiring): Promise<void> {
  const roomSync = new RoomSync(
    {
      // A getter: a key rotation replaces the host (and restarts this service).
      get libp2p() {
        return parts.get('libp2p')
      },
      key: () => parts.get('key'),
      store: parts.get('store'),
      rooms: parts.get('rooms'),
      acts: parts.get('gate'),
      audit: parts.get('audit'),
      logger,
      acceptedPeers: async () => {
        const accepted = new Map<string, AcceptedPeer>()
        // A mesh on the deny list (a human's, or a defection's: SPEC §11) syncs no room.
        const denied = new Set((await parts.find('policy')?.get())?.deny ?? [])
        for (const p of await parts.get('connections').peers()) {
          if (denied.has(p.did)) continue
          if (p.state === 'accepted' || p.state === 'degraded')
            accepted.set(p.did, {
              did: p.did,
              keys: p.keys,
              name: p.name,
              architectDid: p.architectDid,
              multiaddrs: p.multiaddrs,
            })
        }
        return accepted
      },
      policy: async () => ({
        ...(parts.find('federation') ?? federationSettings(DEFAULT_POLICY)),
        // history limit (issue 13): from the policy itself, the manifest does not carry it
        backfillLimit: (await parts.find('policy')?.get())?.backfillLimit ?? null,
        // room lifecycle (SPEC §9)
        autoAcceptRooms: (await parts.find('policy')?.get())?.autoAcceptRooms ?? false,
      }),
    },
    {
      architectDid: parts.get('info').architectDid,
      ...(init.rooms?.syncIntervalMs !== undefined ? { checkIntervalMs: init.rooms.syncIntervalMs } : {}),
      ...(init.rooms?.dialTimeoutMs !== undefined ? { dialTimeoutMs: init.rooms.dialTimeoutMs } : {}),
      ...(init.rooms?.inbound !== undefined ? { inbound: init.rooms.inbound } : {}),
      // periodic re-sync
      ...(init.rooms?.resyncIntervalMs !== undefined
        ? { resyncIntervalMs: init.rooms.resyncIntervalMs }
        : {}),
    },
  )
  await parts.add('roomSync', roomSync)
}
