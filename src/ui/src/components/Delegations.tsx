import {
  Badge,
  Button,
  Card,
  Code,
  Group,
  Modal,
  Stack,
  Table,
  Text,
  Textarea,
  TextInput,
  Title,
} from '@mantine/core'
import { useMediaQuery } from '@mantine/hooks'
import { useState } from 'react'
import type { IssuedDelegationView, RevokeResultView } from '../../../api/index.ts'
import { useAction, usePoll } from '../lib/hooks.ts'
import {
  canRevoke,
  capabilitiesText,
  type DelegationState,
  delegationState,
  expiryText,
  revocationOrigin,
  sortRevocations,
} from '../lib/lifecycle.ts'
import { useSession } from '../lib/session.tsx'
import { ACTS } from '../lib/ucan.ts'
import { ActOutcome, EmptyState, ErrorState, Loading, ShortDid, When } from './common.tsx'
import { DataTable } from './DataTable.tsx'

/**
 * Revocation people can use (SPEC §9): the delegations this mesh's principals issued
 * (`GET /api/auth/delegations`) with a Revoke button — a `ucan/revoke` act signed in this
 * browser — and every revocation held here, this mesh's own and its peers'.
 */
export function Delegations() {
  const session = useSession()
  const list = usePoll(() => session.call('listDelegations'), 5000, [session])
  const [target, setTarget] = useState<IssuedDelegationView | undefined>(undefined)
  if (list.data === undefined)
    return list.error !== undefined ? (
      <ErrorState error={list.error} />
    ) : (
      <Loading label="Loading delegations…" />
    )
  const self = session.health.did
  const revocations = sortRevocations(list.data.revocations, self)
  return (
    <Stack>
      {list.error !== undefined && <ErrorState error={list.error} title="Could not refresh" />}
      <Title order={3} size="h4">
        Delegations issued here
      </Title>
      {list.data.delegations.length === 0 ? (
        <EmptyState>
          No delegations recorded. `mesh delegate` records the ones it makes; record another below.
        </EmptyState>
      ) : (
        <DelegationList delegations={list.data.delegations} onRevoke={setTarget} />
      )}
      <Title order={3} size="h4">
        Revocations held here
      </Title>
      {revocations.length === 0 ? (
        <EmptyState>No revocations: neither this mesh nor its peers revoked a delegation.</EmptyState>
      ) : (
        <DataTable
          scroll
          striped
          aria-label="Revocations held by this mesh"
          columns={['Delegation', 'From', 'By', 'Reason', 'When']}
        >
          {revocations.map((r) => {
            const origin = revocationOrigin(r, self)
            return (
              <Table.Tr
                key={`${r.mesh ?? self}:${r.cid}`}
                data-testid="revocation-row"
                data-cid={r.cid}
                data-origin={origin}
              >
                <Table.Td>
                  <Cid cid={r.cid} />
                </Table.Td>
                <Table.Td>
                  {origin === 'own' ? (
                    <Badge
                      variant="light"
                      styles={{ label: { overflow: 'visible' } }}
                      style={{ flexShrink: 0 }}
                    >
                      this mesh
                    </Badge>
                  ) : (
                    <Stack gap={0}>
                      <Badge variant="light" color="grape" styles={{ label: { overflow: 'visible' } }}>
                        peer
                      </Badge>
                      <ShortDid did={r.mesh} />
                    </Stack>
                  )}
                </Table.Td>
                <Table.Td>
                  <ShortDid did={r.by} />
                </Table.Td>
                <Table.Td>{r.reason === '' ? <Text c="dimmed">—</Text> : r.reason}</Table.Td>
                <Table.Td>
                  <When value={r.at} />
                </Table.Td>
              </Table.Tr>
            )
          })}
        </DataTable>
      )}
      <RecordCard onDone={list.reload} />
      {target !== undefined && (
        <RevokeModal
          delegation={target}
          onClose={() => setTarget(undefined)}
          onDone={() => {
            list.reload()
          }}
        />
      )}
    </Stack>
  )
}

/** The delegations: a table, or at phone width one card each (the Revoke button in view). */
function DelegationList({
  delegations,
  onRevoke,
}: {
  delegations: IssuedDelegationView[]
  onRevoke: (d: IssuedDelegationView) => void
}) {
  const narrow = useMediaQuery('(max-width: 40em)')
  const revokeButton = (d: IssuedDelegationView) =>
    canRevoke(d) && (
      <Button
        size="xs"
        color="red"
        variant="light"
        onClick={() => onRevoke(d)}
        aria-label={`Revoke delegation ${d.cid}`}
      >
        Revoke
      </Button>
    )
  const stateOf = (d: IssuedDelegationView, state: DelegationState) => (
    <>
      <StateBadge state={state} />
      {d.revoked !== null && d.revoked.reason !== '' && (
        <Text size="xs" c="dimmed">
          “{d.revoked.reason}”
        </Text>
      )}
    </>
  )
  if (narrow === true)
    return (
      <Stack gap="xs" component="section" aria-label="Delegations issued by this mesh's principals">
        {delegations.map((d) => {
          const state = delegationState(d)
          return (
            <Card
              key={d.cid}
              withBorder
              padding="sm"
              data-testid="delegation-row"
              data-cid={d.cid}
              data-state={state}
            >
              <Group justify="space-between" wrap="nowrap" align="flex-start">
                <Cid cid={d.cid} />
                <div>{stateOf(d, state)}</div>
              </Group>
              <Text size="xs" mt={4}>
                <ShortDid did={d.issuer} /> → <ShortDid did={d.audience} />
              </Text>
              <Text size="xs" style={{ overflowWrap: 'anywhere' }}>
                {capabilitiesText(d)}
              </Text>
              <Group justify="space-between" mt={4}>
                <Text size="xs" c="dimmed">
                  expires: <Expiry exp={d.exp} />
                </Text>
                {revokeButton(d)}
              </Group>
            </Card>
          )
        })}
      </Stack>
    )
  return (
    <DataTable
      scroll
      striped
      aria-label="Delegations issued by this mesh's principals"
      columns={[
        'Delegation',
        'Issuer',
        'Audience',
        'Capabilities',
        'Expires',
        'State',
        { hidden: 'Actions' },
      ]}
    >
      {delegations.map((d) => {
        const state = delegationState(d)
        return (
          <Table.Tr key={d.cid} data-testid="delegation-row" data-cid={d.cid} data-state={state}>
            <Table.Td>
              <Cid cid={d.cid} />
            </Table.Td>
            <Table.Td>
              <ShortDid did={d.issuer} />
            </Table.Td>
            <Table.Td>
              <ShortDid did={d.audience} />
            </Table.Td>
            <Table.Td>
              <Text size="xs" maw={260} style={{ overflowWrap: 'anywhere' }}>
                {capabilitiesText(d)}
              </Text>
            </Table.Td>
            <Table.Td>
              <Expiry exp={d.exp} />
            </Table.Td>
            <Table.Td>{stateOf(d, state)}</Table.Td>
            <Table.Td>{revokeButton(d)}</Table.Td>
          </Table.Tr>
        )
      })}
    </DataTable>
  )
}

function Expiry({ exp }: { exp: number | null }) {
  if (exp === null) return <Text span>never</Text>
  const iso = new Date(exp * 1000).toISOString()
  return (
    <time dateTime={iso} title={iso}>
      {expiryText(exp)}
    </time>
  )
}

const STATE_COLOR: Record<DelegationState, string> = { live: 'green', expired: 'gray', revoked: 'red' }

function StateBadge({ state }: { state: DelegationState }) {
  return (
    <Badge color={STATE_COLOR[state]} variant="light" data-status={state}>
      {state}
    </Badge>
  )
}

/** A CID, shortened, whole on hover and for screen readers. */
function Cid({ cid }: { cid: string }) {
  return (
    <Code title={cid} aria-label={cid}>
      {cid.length > 20 ? `${cid.slice(0, 10)}…${cid.slice(-6)}` : cid}
    </Code>
  )
}

function RevokeModal({
  delegation: d,
  onClose,
  onDone,
}: {
  delegation: IssuedDelegationView
  onClose: () => void
  onDone: () => void
}) {
  const session = useSession()
  const [reason, setReason] = useState('')
  const [done, setDone] = useState<RevokeResultView | undefined>(undefined)
  const revoke = useAction(async () => {
    const why = reason.trim()
    const ucan = await session.act({ can: ACTS.revoke, ucan: d.cid, ...(why !== '' ? { reason: why } : {}) })
    setDone(await session.call('revoke', { body: { cid: d.cid, ucan } }))
    onDone()
  })
  const peers = done?.announcedTo.length ?? 0
  return (
    <Modal opened onClose={onClose} title="Revoke this delegation?" size="lg">
      <Stack>
        <Text size="sm">
          Your key signs <Code>{ACTS.revoke}</Code> for{' '}
          <Code style={{ overflowWrap: 'anywhere' }}>{d.cid}</Code> ({capabilitiesText(d)}, to{' '}
          <ShortDid did={d.audience} />
          ). Every chain through it is refused, here and — once the signed notice reaches them — on connected
          meshes. It cannot be undone.
        </Text>
        <TextInput
          label="Reason (optional)"
          maxLength={512}
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          data-testid="revoke-reason"
          disabled={done !== undefined}
        />
        <ActOutcome action={revoke} refused="Revocation refused" done={done !== undefined} testId="revoked">
          Revoked
          {peers > 0
            ? `; the notice is on its way to ${peers} peer mesh${peers === 1 ? '' : 'es'}`
            : ' (no peer to tell)'}
          .
        </ActOutcome>
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            {done !== undefined ? 'Close' : 'Keep it'}
          </Button>
          {done === undefined && (
            <Button color="red" loading={revoke.busy} onClick={() => void revoke.run()}>
              Sign and revoke
            </Button>
          )}
        </Group>
      </Stack>
    </Modal>
  )
}

/** Records a delegation a principal of this mesh issued elsewhere (its token), so it can be listed and revoked. */
function RecordCard({ onDone }: { onDone: () => void }) {
  const session = useSession()
  const [token, setToken] = useState('')
  const [recorded, setRecorded] = useState<IssuedDelegationView | undefined>(undefined)
  const record = useAction(async () => {
    setRecorded(await session.call('recordDelegation', { body: { delegation: token.trim() } }))
    setToken('')
    onDone()
  })
  return (
    <Card withBorder maw={720}>
      <Title order={3} size="h5" mb="xs">
        Record a delegation
      </Title>
      <form
        onSubmit={(e) => {
          e.preventDefault()
          if (token.trim() !== '') void record.run()
        }}
      >
        <Stack gap="xs">
          <Textarea
            label="Delegation token (base64url), issued by a principal of this mesh"
            value={token}
            onChange={(e) => setToken(e.currentTarget.value)}
            autosize
            minRows={2}
            maxRows={6}
            data-testid="record-token"
          />
          <Group justify="flex-end">
            <Button type="submit" variant="light" disabled={token.trim() === ''} loading={record.busy}>
              Record
            </Button>
          </Group>
          <ActOutcome action={record} refused="Not recorded" done={recorded !== undefined} testId="recorded">
            Recorded {recorded?.cid}.
          </ActOutcome>
        </Stack>
      </form>
    </Card>
  )
}
