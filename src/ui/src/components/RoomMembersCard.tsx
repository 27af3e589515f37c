import { Button, Card, Group, Indicator, Select, Stack, Text, Title } from '@mantine/core'
import { MEMBER_ROLES, type Member, type MemberRole } from '../../../api/index.ts'
import type { ApiError } from '../lib/api.ts'
import { useAction, usePoll } from '../lib/hooks.ts'
import { canSetRoomRoles, roomMemberKind } from '../lib/members.ts'
import { useSession } from '../lib/session.tsx'
import { ACTS } from '../lib/ucan.ts'
import { EmptyState, ErrorState, FederatedBadge, Loading } from './common.tsx'
import { KindBadge } from './Members.tsx'

/**
 * A room's members: who is here now, each one's role and tier, agents marked apart from
 * humans; the room's owner and its moderators change a member's role here.
 */
export function MembersCard({
  roomId,
  members,
  present,
  error,
  onChanged,
}: {
  roomId: string
  members: Member[] | undefined
  present: string[]
  error: ApiError | undefined
  onChanged: () => void
}) {
  const session = useSession()
  // This mesh's member book tells its own agents from its humans (absent until the node serves it).
  const book = usePoll(() => session.call('listMembers'), 30_000, [session])
  const canSet = canSetRoomRoles(members, session.me.did)
  // room lifecycle (SPEC §9): the owner or a moderator removes a member by a signed room/remove
  const remove = useAction(async (did: string) => {
    const ucan = await session.act({ can: ACTS.roomRemove, room: roomId, did })
    await session.call('removeRoomMember', { params: { id: roomId, did }, body: { ucan } })
    onChanged()
  })
  const setRole = useAction(async (did: string, role: MemberRole) => {
    // room lifecycle (SPEC §9): a role change is the signer's room/role act
    const ucan = await session.act({ can: ACTS.roomRole, room: roomId, did, role })
    await session.call('setRoomRole', { params: { id: roomId, did }, body: { role, ucan } })
    onChanged()
  })
  return (
    <Card withBorder>
      <Title order={3} size="h5" mb="xs">
        Members
      </Title>
      {error !== undefined && <ErrorState error={error} />}
      {setRole.error !== undefined && (
        <ErrorState error={setRole.error} title="Role change refused" onClose={setRole.clear} />
      )}
      {remove.error !== undefined && (
        <ErrorState error={remove.error} title="Removal refused" onClose={remove.clear} />
      )}
      {members === undefined ? (
        <Loading label="Loading members…" />
      ) : members.length === 0 ? (
        <EmptyState>No members.</EmptyState>
      ) : (
        <Stack
          gap={4}
          component="ul"
          style={{ listStyle: 'none', padding: 0, margin: 0 }}
          data-testid="members"
        >
          {members.map((m) => {
            const kind = roomMemberKind(m, book.data?.members)
            return (
              <Group
                key={m.did}
                gap={6}
                component="li"
                wrap="nowrap"
                data-testid="member"
                data-name={m.name}
                data-did={m.did}
                data-kind={kind ?? 'unknown'}
                data-role={m.role}
              >
                <Indicator
                  color={present.includes(m.did) ? 'green' : 'gray'}
                  size={8}
                  position="middle-start"
                  offset={-8}
                  aria-label={present.includes(m.did) ? 'here now' : 'away'}
                >
                  <span />
                </Indicator>
                <Stack gap={2} style={{ minWidth: 0 }}>
                  <Group gap={6} wrap="nowrap">
                    <Text size="sm" fw={600}>
                      {m.name}
                    </Text>
                    <KindBadge kind={kind} />
                    {!m.local && <FederatedBadge label="foreign participant" />}
                  </Group>
                  <Group gap={6} wrap="nowrap">
                    {canSet && m.did !== session.me.did ? (
                      <Select
                        size="xs"
                        w={130}
                        aria-label={`Role of ${m.name}`}
                        data={[...MEMBER_ROLES]}
                        value={m.role}
                        allowDeselect={false}
                        disabled={setRole.busy}
                        onChange={(v) =>
                          v !== null && v !== m.role && void setRole.run(m.did, v as MemberRole)
                        }
                        data-testid="room-role"
                      />
                    ) : (
                      <Text size="xs" c="dimmed">
                        {m.role}
                      </Text>
                    )}
                    <Text size="xs" c="dimmed">
                      tier {m.tier}
                    </Text>
                    {canSet && m.did !== session.me.did && (
                      <Button
                        size="compact-xs"
                        variant="subtle"
                        color="red"
                        loading={remove.busy}
                        onClick={() => void remove.run(m.did)}
                        aria-label={`Remove ${m.name}`}
                        data-testid="remove-room-member"
                      >
                        Remove
                      </Button>
                    )}
                  </Group>
                </Stack>
              </Group>
            )
          })}
        </Stack>
      )}
    </Card>
  )
}
