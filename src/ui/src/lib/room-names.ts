import type { ListedRoom } from '../../../api/index.ts'
import { usePoll } from './hooks.ts'
import { dmName, meshNameOf } from './names.ts'
import { useSession } from './session.tsx'

/** At most this many DMs have their members looked up for their names. */
const MAX_DM_LOOKUPS = 20

/**
 * Names instead of bare dids in room headers and DM names (issue 14): the name of a room's
 * home mesh (this mesh, or a peer by its connection) and what each DM is called (its
 * other members' names).
 */
export function useRoomNames(rooms: readonly ListedRoom[] | undefined) {
  const session = useSession()
  const connections = usePoll(() => session.call('listConnections'), 5000, [session])
  const dms = (rooms ?? []).filter((r) => r.dm === true).slice(0, MAX_DM_LOOKUPS)
  const key = dms.map((r) => r.id).join(',')
  const dmMembers = usePoll(
    async () =>
      new Map(
        await Promise.all(
          dms.map(
            async (r) =>
              [
                r.id,
                await session
                  .call('roomMembers', { params: { id: r.id } })
                  .then((res) => res.members)
                  .catch(() => undefined),
              ] as const,
          ),
        ),
      ),
    10_000,
    [session, key],
  )
  const own = { did: session.health.did, name: session.meshName }
  return {
    meshName: (did: string | null | undefined) => meshNameOf(did, own, connections.data ?? []),
    roomName: (room: { id: string; name: string; dm?: boolean }) =>
      room.dm === true ? dmName(room, dmMembers.data?.get(room.id), session.me.did) : room.name,
  }
}
