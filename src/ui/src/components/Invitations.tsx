import { Badge, Button, Card, Code, Group, Stack, Text, Title } from '@mantine/core'
import { useState } from 'react'
import type { Invitation } from '../../../api/index.ts'
import { useAction, usePoll } from '../lib/hooks.ts'
import { useSession } from '../lib/session.tsx'
import { ACTS } from '../lib/ucan.ts'
import { ActOutcome, ErrorState, ShortDid } from './common.tsx'

/**
 * Rooms other meshes shared with this one (SPEC §9): a pending one is accepted or
 * declined by the human's signed act (`room/accept`, `room/decline`); until then nothing
 * of the room is stored here. Answered ones are listed below, declined ones too.
 */
export function InvitationsCard({ onAnswered }: { onAnswered: () => void }) {
  const session = useSession()
  const invitations = usePoll(() => session.call('listInvitations'), 3000, [session])
  const [done, setDone] = useState<string | undefined>(undefined)
  const answer = useAction(async (invitation: Invitation, what: 'accept' | 'decline') => {
    const can = what === 'accept' ? ACTS.roomAccept : ACTS.roomDecline
    const ucan = await session.act({ can, room: invitation.room, peer: invitation.peer })
    await session.call(what === 'accept' ? 'acceptInvitation' : 'declineInvitation', {
      params: { id: invitation.id },
      body: { ucan },
    })
    setDone(what === 'accept' ? 'Accepted: the room syncs.' : 'Declined: nothing of it is stored.')
    invitations.reload()
    onAnswered()
  })
  const list = invitations.data?.invitations ?? []
  if (list.length === 0 && invitations.error === undefined) return null
  return (
    <Card withBorder aria-labelledby="invitations-title" data-testid="invitations">
      <Title order={3} size="h5" id="invitations-title" mb="xs">
        Invitations
      </Title>
      {invitations.error !== undefined && <ErrorState error={invitations.error} />}
      <Stack gap="xs">
        {list.map((i) => (
          <Stack
            key={i.id}
            gap={4}
            data-testid="invitation"
            data-room={i.room}
            data-name={i.name}
            data-status={i.status}
          >
            <Group gap={6} wrap="nowrap">
              <Text span fw={600}>
                {/* issue 14: a DM's stored name holds a did's tail; it is a direct message from its mesh */}
                {i.dm !== undefined ? 'direct message' : `# ${i.name}`}
              </Text>
              <Badge size="xs" variant="light" color={i.status === 'pending' ? 'blue' : 'gray'}>
                {i.endedBy !== undefined ? `ended (${i.endedBy})` : i.status}
              </Badge>
            </Group>
            <Text size="xs" c="dimmed">
              from {i.peerName ?? <ShortDid did={i.peer} />}
            </Text>
            {i.status === 'pending' && (
              <Group gap="xs">
                <Button size="xs" loading={answer.busy} onClick={() => void answer.run(i, 'accept')}>
                  Accept
                </Button>
                <Button
                  size="xs"
                  variant="default"
                  loading={answer.busy}
                  onClick={() => void answer.run(i, 'decline')}
                >
                  Decline
                </Button>
              </Group>
            )}
          </Stack>
        ))}
        <Text size="xs" c="dimmed">
          Your key signs <Code>{ACTS.roomAccept}</Code> or <Code>{ACTS.roomDecline}</Code> for the room.
        </Text>
      </Stack>
      <ActOutcome action={answer} refused="Answer refused" done={done !== undefined} testId="answered">
        {done}
      </ActOutcome>
    </Card>
  )
}
