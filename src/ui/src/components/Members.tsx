import {
  Badge,
  Button,
  Code,
  Group,
  Modal,
  SegmentedControl,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core'
import { useState } from 'react'
import type { MemberKind, MemberView } from '../../../api/index.ts'
import { useAction, usePoll } from '../lib/hooks.ts'
import { type CredentialView, readCredential } from '../lib/members.ts'
import { useSession } from '../lib/session.tsx'
import { ACTS } from '../lib/ucan.ts'
import { ActForm } from './ActForm.tsx'
import { ActOutcome, EmptyState, ErrorState, Loading, ShortDid, When } from './common.tsx'
import { DataTable } from './DataTable.tsx'

/** An agent's badge, wherever a principal is shown (the Members screen, a room's members). */
export function KindBadge({ kind }: { kind: MemberKind | undefined }) {
  if (kind === undefined) return null
  return (
    <Badge
      size="xs"
      variant={kind === 'agent' ? 'filled' : 'light'}
      color={kind === 'agent' ? 'grape' : 'gray'}
      tt="none"
      style={{ flexShrink: 0 }}
      data-testid="kind-badge"
      data-kind={kind}
    >
      {kind === 'agent' ? '🤖 agent' : 'human'}
    </Badge>
  )
}

/** Members (SPEC §8): the mesh's humans and agents; enrol and remove by acts signed in this browser. */
export function MembersView() {
  const session = useSession()
  const members = usePoll(() => session.call('listMembers'), 5000, [session])
  const [credentialOf, setCredentialOf] = useState<MemberView | undefined>(undefined)
  return (
    <Stack>
      <Title order={2}>Members</Title>
      {members.error !== undefined && members.data === undefined ? (
        <Stack>
          <ErrorState
            error={members.error}
            title={
              members.error.status === 404
                ? 'This node does not serve the members API yet'
                : 'Could not load the members'
            }
          />
        </Stack>
      ) : members.data === undefined ? (
        <Loading label="Loading members…" />
      ) : (
        <MemberTable
          members={members.data.members}
          onCredential={setCredentialOf}
          onRemoved={members.reload}
        />
      )}
      <EnrolCard onDone={members.reload} />
      <CredentialModal member={credentialOf} onClose={() => setCredentialOf(undefined)} />
    </Stack>
  )
}

function MemberTable({
  members,
  onCredential,
  onRemoved,
}: {
  members: MemberView[]
  onCredential: (m: MemberView) => void
  onRemoved: () => void
}) {
  const session = useSession()
  const [confirming, setConfirming] = useState<string | undefined>(undefined)
  const [removed, setRemoved] = useState<string | undefined>(undefined)
  const remove = useAction(async (did: string) => {
    const ucan = await session.act({ can: ACTS.remove, did })
    await session.call('removeMember', { params: { did }, body: { ucan } })
    setConfirming(undefined)
    setRemoved(did)
    onRemoved()
  })
  return (
    <Stack>
      {members.length === 0 ? (
        <EmptyState>No members yet.</EmptyState>
      ) : (
        <DataTable
          scroll
          striped
          aria-label="Members of this mesh"
          data-testid="mesh-members"
          columns={['Name', 'Kind', 'Role', 'Tier', 'Enrolled', 'Enrolled by', { hidden: 'Actions' }]}
        >
          {members.map((m) => (
            <Table.Tr key={m.did} data-testid="mesh-member" data-did={m.did} data-kind={m.kind}>
              <Table.Td>
                <Text fw={600}>{m.name}</Text>
                <Text size="xs" c="dimmed">
                  @{m.localId.replace(/^@/, '')}
                </Text>
                <ShortDid did={m.did} />
              </Table.Td>
              <Table.Td>
                <KindBadge kind={m.kind} />
              </Table.Td>
              <Table.Td>{m.role}</Table.Td>
              <Table.Td>
                <Badge variant="light">tier {m.tier}</Badge>
              </Table.Td>
              <Table.Td>
                <When value={m.enrolledAt} />
              </Table.Td>
              <Table.Td>
                <ShortDid did={m.enrolledBy} />
              </Table.Td>
              <Table.Td>
                <Group gap={4} wrap="nowrap">
                  <Button size="xs" variant="default" onClick={() => onCredential(m)}>
                    Credential
                  </Button>
                  {m.did === session.me.did ? null : confirming === m.did ? (
                    <>
                      <Button
                        size="xs"
                        color="red"
                        loading={remove.busy}
                        onClick={() => void remove.run(m.did)}
                        data-testid="confirm-remove"
                      >
                        Sign and remove
                      </Button>
                      <Button size="xs" variant="subtle" onClick={() => setConfirming(undefined)}>
                        Keep
                      </Button>
                    </>
                  ) : (
                    <Button
                      size="xs"
                      variant="subtle"
                      color="red"
                      onClick={() => setConfirming(m.did)}
                      aria-label={`Remove ${m.name}`}
                    >
                      Remove
                    </Button>
                  )}
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </DataTable>
      )}
      <Text size="xs" c="dimmed">
        Removing signs <Code>{ACTS.remove}</Code>: the member's sessions end at once, its credential is
        revoked and its room memberships are ended.
      </Text>
      <ActOutcome action={remove} refused="Removal refused" done={removed !== undefined} testId="removed">
        <ShortDid did={removed} /> is no longer a member.
      </ActOutcome>
    </Stack>
  )
}

/** Enrols a did:key as a human or an agent by the signed-in human's `mesh/enrol` act. */
function EnrolCard({ onDone }: { onDone: () => void }) {
  const session = useSession()
  const [did, setDid] = useState('')
  const [kind, setKind] = useState<MemberKind>('human')
  const [name, setName] = useState('')
  const [role, setRole] = useState('')
  const [done, setDone] = useState<MemberView | undefined>(undefined)
  const enrol = useAction(async () => {
    const subject = did.trim()
    const asked = role.trim() === '' ? undefined : role.trim()
    const ucan = await session.act({ can: ACTS.enrol, did: subject, kind, ...(asked ? { role: asked } : {}) })
    const member = await session.call('enrolMember', {
      body: { did: subject, kind, name: name.trim(), ucan, ...(asked ? { role: asked } : {}) },
    })
    setDone(member)
    setDid('')
    setName('')
    setRole('')
    onDone()
  })
  const ready = /^did:key:z[1-9A-HJ-NP-Za-km-z]+$/.test(did.trim()) && name.trim() !== ''
  return (
    <ActForm
      title="Enrol a member"
      ready={ready}
      action={enrol}
      note={
        <>
          Your key signs a UCAN invoking <Code>{ACTS.enrol}</Code> for this key, kind and role; the mesh then
          issues it a membership credential.
        </>
      }
      submit="Sign and enrol"
      refused="Enrolment refused"
      done={done !== undefined}
      testId="enrolled"
      outcome={
        <>
          {done?.name} is enrolled as {done?.kind === 'agent' ? 'an agent' : 'a human'} (tier {done?.tier}).
        </>
      }
    >
      <TextInput
        label="Key (did:key)"
        placeholder="did:key:z6Mk…"
        value={did}
        onChange={(e) => setDid(e.currentTarget.value)}
        data-testid="enrol-did"
      />
      <Group grow align="end">
        <SegmentedControl
          aria-label="Kind"
          value={kind}
          onChange={(v) => setKind(v as MemberKind)}
          data={[
            { value: 'human', label: 'human' },
            { value: 'agent', label: 'agent' },
          ]}
          data-testid="enrol-kind"
        />
        <TextInput
          label="Name"
          placeholder="carol"
          maxLength={64}
          value={name}
          onChange={(e) => setName(e.currentTarget.value)}
          data-testid="enrol-name"
        />
        <TextInput
          label="Role (optional)"
          placeholder="member"
          maxLength={64}
          value={role}
          onChange={(e) => setRole(e.currentTarget.value)}
          data-testid="enrol-role"
        />
      </Group>
    </ActForm>
  )
}

/** A member's membership credential: what it states, and the VC-JWT itself. */
function CredentialModal({ member, onClose }: { member: MemberView | undefined; onClose: () => void }) {
  const session = useSession()
  const credential = usePoll(
    async (): Promise<{ vc: string; view: CredentialView } | undefined> => {
      if (member === undefined) return undefined
      const { vc } = await session.call('memberCredential', { params: { did: member.did } })
      return { vc, view: readCredential(vc) }
    },
    0,
    [session, member?.did],
  )
  const data = member === undefined ? undefined : credential.data
  return (
    <Modal
      opened={member !== undefined}
      onClose={onClose}
      title={`Membership credential of ${member?.name ?? ''}`}
      size="lg"
    >
      {credential.error !== undefined ? (
        <ErrorState error={credential.error} title="Could not load the credential" />
      ) : data === undefined ? (
        <Loading label="Loading the credential…" />
      ) : (
        <Stack gap="xs" data-testid="credential">
          <Group gap="xs">
            <KindBadge
              kind={data.view.kind === 'agent' || data.view.kind === 'human' ? data.view.kind : undefined}
            />
            <Text size="sm">
              role <b>{data.view.role ?? '—'}</b> · tier <b>{data.view.tier ?? '—'}</b>
            </Text>
          </Group>
          <Text size="sm">
            Issued by <ShortDid did={data.view.issuer} /> to <ShortDid did={data.view.subject} />
          </Text>
          <Text size="sm">
            Valid from {data.view.issuedAt ?? '—'} until {data.view.expiresAt ?? '—'}
          </Text>
          <Code block style={{ wordBreak: 'break-all', whiteSpace: 'pre-wrap' }} data-testid="credential-jwt">
            {data.vc}
          </Code>
        </Stack>
      )}
    </Modal>
  )
}
