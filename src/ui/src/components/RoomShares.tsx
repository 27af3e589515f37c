import { Badge, Button, Group, Stack, Text } from '@mantine/core'
import { useState } from 'react'
import type { RoomDetail } from '../../../api/index.ts'
import { useAction } from '../lib/hooks.ts'
import { useSession } from '../lib/session.tsx'
import { ACTS } from '../lib/ucan.ts'
import { ActOutcome, ShortDid } from './common.tsx'

type Share = RoomDetail['shares'][number]

/**
 * A room's shares (SPEC §9), each with its state: pending (the peer has not answered),
 * declined, shared, or ended (unshare or leave: what each side holds stays). This mesh
 * ends one of its own by a signed `room/unshare`, or leaves a room shared with it by a
 * signed `room/leave`.
 */
export function RoomShares({
  roomId,
  shares,
  nameOf,
  onChanged,
}: {
  roomId: string
  shares: Share[]
  nameOf: (peer: string) => string | undefined
  onChanged: () => void
}) {
  const session = useSession()
  const [done, setDone] = useState<string | undefined>(undefined)
  const end = useAction(async (share: Share) => {
    if (share.direction === 'out') {
      const ucan = await session.act({ can: ACTS.roomUnshare, room: roomId, peer: share.peer })
      await session.call('unshareRoom', { params: { id: roomId }, body: { mesh: share.peer, ucan } })
      setDone('Unshared: nothing of the room crosses that link again.')
    } else {
      const ucan = await session.act({ can: ACTS.roomLeave, room: roomId })
      await session.call('leaveRoom', { params: { id: roomId }, body: { ucan } })
      setDone('Left: nothing of the room crosses again; what is here stays.')
    }
    onChanged()
  })
  if (shares.length === 0) return null
  return (
    <Stack gap={4} mb="xs">
      {shares.map((s) => {
        const state =
          s.endedBy !== undefined ? `ended (${s.endedBy})` : s.shared === false ? s.status : 'shared'
        return (
          <Group
            key={`${s.peer}-${s.direction}`}
            gap={6}
            wrap="nowrap"
            data-testid="room-share"
            data-peer={s.peer}
            data-direction={s.direction}
            data-state={state}
          >
            <Text size="xs">
              {s.direction === 'out' ? 'shared with' : 'shared by'}{' '}
              {nameOf(s.peer) ?? <ShortDid did={s.peer} />}
            </Text>
            <Badge size="xs" variant="light" color={state === 'shared' ? 'green' : 'gray'}>
              {state}
            </Badge>
            {s.endedBy === undefined && s.status !== 'declined' && (
              <Button
                size="compact-xs"
                variant="subtle"
                color="red"
                loading={end.busy}
                onClick={() => void end.run(s)}
                data-testid={s.direction === 'out' ? 'unshare' : 'leave'}
              >
                {s.direction === 'out' ? 'Unshare' : 'Leave'}
              </Button>
            )}
          </Group>
        )
      })}
      <ActOutcome action={end} refused="Refused" done={done !== undefined} testId="share-ended">
        {done}
      </ActOutcome>
    </Stack>
  )
}
