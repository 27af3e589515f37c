import {
  Badge,
  Button,
  Card,
  Code,
  Group,
  NumberInput,
  SegmentedControl,
  Select,
  Stack,
  Switch,
  Table,
  TagsInput,
  Text,
  TextInput,
  Title,
  VisuallyHidden,
} from '@mantine/core'
import { useEffect, useState } from 'react'
import type { FederationPolicy, TrustView } from '../../../api/index.ts'
import { readableDetails } from '../lib/audit-details.ts'
import { useAction, usePoll } from '../lib/hooks.ts'
import { policyPatchOf } from '../lib/lifecycle.ts'
import { useSession } from '../lib/session.tsx'
import { ACTS } from '../lib/ucan.ts'
import { ActForm } from './ActForm.tsx'
import { BackfillLimitInput } from './BackfillLimitInput.tsx'
import { ActOutcome, EmptyState, ErrorState, Loading, ShortDid, When } from './common.tsx'
import { DataTable } from './DataTable.tsx'
import { Delegations } from './Delegations.tsx'
import { RoutedTabs } from './RoutedTabs.tsx'

/** Trust and audit: tiers and reputation, refused events, the audit log and its proof, the policy. */
export function TrustAudit() {
  return (
    <Stack>
      <Title order={2}>Trust and audit</Title>
      <RoutedTabs
        base="/trust"
        label="Trust and audit"
        tabs={[
          { value: 'trust', label: 'Trust', panel: <TrustTab /> },
          { value: 'rejected', label: 'Rejected', panel: <RejectedTab /> },
          { value: 'audit', label: 'Audit log', panel: <AuditTab /> },
          { value: 'policy', label: 'Federation policy', panel: <PolicyTab /> },
          // delegations and revocation (issue 13)
          { value: 'delegations', label: 'Delegations', panel: <Delegations /> },
        ]}
      />
    </Stack>
  )
}

function TrustTab() {
  const session = useSession()
  const trust = usePoll(
    async () => {
      const res = await session.call('listTrust')
      return [...res.principals, ...res.meshes]
    },
    5000,
    [session],
  )
  if (trust.error !== undefined && trust.data === undefined) {
    return (
      <Stack>
        <ErrorState
          error={trust.error}
          title={
            trust.error.code === 'MESH_NOT_FOUND'
              ? 'This node does not serve the trust API yet'
              : 'Could not load trust'
          }
        />
        <Text size="sm" c="dimmed">
          Tiers and reputation appear here once the node serves <Code>GET /api/trust</Code>. Rejected events,
          the audit log and the federation policy work already.
        </Text>
      </Stack>
    )
  }
  if (trust.data === undefined) return <Loading label="Loading trust…" />
  if (trust.data.length === 0)
    return (
      <Stack>
        <EmptyState>No foreign principal or peer mesh has interacted with this mesh yet.</EmptyState>
        <PromoteCard onDone={trust.reload} />
      </Stack>
    )
  return (
    <Stack>
      <DataTable
        scroll
        striped
        aria-label="Trust per principal and peer mesh"
        columns={[
          'Who',
          'Scope',
          'Tier',
          'Reputation',
          'Accepted / refused',
          'Last reason',
          'Last interaction',
        ]}
      >
        {trust.data.map((r) => (
          <Table.Tr key={`${r.scope}-${r.did}`}>
            <Table.Td>
              <ShortDid did={r.did} />
              {r.local && (
                <Badge size="xs" ml={4} variant="light">
                  local
                </Badge>
              )}
            </Table.Td>
            <Table.Td>{r.scope}</Table.Td>
            <Table.Td>
              <Badge variant="light">tier {r.tier}</Badge>
            </Table.Td>
            <Table.Td>{(r.score * 100).toFixed(0)}%</Table.Td>
            <Table.Td>
              {r.accepted} / {r.refused}
            </Table.Td>
            <Table.Td>{r.tierReason ?? r.lastReason ?? '—'}</Table.Td>
            <Table.Td>
              <When value={r.lastInteractionAt ?? null} />
            </Table.Td>
          </Table.Tr>
        ))}
      </DataTable>
      <PromoteCard onDone={trust.reload} />
    </Stack>
  )
}

/** Sets a tier by the signed-in human's `trust/promote` UCAN (signed in this browser), with a reason. */
function PromoteCard({ onDone }: { onDone: () => void }) {
  const session = useSession()
  const [did, setDid] = useState('')
  const [scope, setScope] = useState<'principal' | 'mesh'>('principal')
  const [tier, setTier] = useState<string | null>('3')
  const [reason, setReason] = useState('')
  const [done, setDone] = useState<TrustView | undefined>(undefined)
  const promote = useAction(async () => {
    const subject = did.trim()
    const granted = Number(tier)
    const ucan = await session.act({ can: ACTS.promote, subject, tier: granted, reason: reason.trim() })
    const record = await session.call('putTrust', {
      params: { did: subject },
      body: { tier: granted, reason: reason.trim(), ucan, scope },
    })
    setDone(record)
    onDone()
  })
  const ready = did.trim().startsWith('did:') && reason.trim() !== '' && tier !== null
  return (
    <ActForm
      title="Change a tier"
      ready={ready}
      action={promote}
      note={
        <>
          Your key signs a UCAN invoking <Code>{ACTS.promote}</Code> with this tier and reason; it is audited.
        </>
      }
      submit="Sign and set tier"
      refused="Tier change refused"
      done={done !== undefined}
      testId="promoted"
      outcome={
        <>
          <ShortDid did={done?.did} /> is now tier {done?.tier}.
        </>
      }
    >
      <TextInput
        label="Principal or peer mesh (did)"
        placeholder="did:key:z…"
        value={did}
        onChange={(e) => setDid(e.currentTarget.value)}
        data-testid="promote-did"
      />
      <Group grow>
        <SegmentedControl
          aria-label="Scope"
          value={scope}
          onChange={(v) => setScope(v as 'principal' | 'mesh')}
          data={[
            { value: 'principal', label: 'principal' },
            { value: 'mesh', label: 'peer mesh' },
          ]}
        />
        <Select
          label="Tier"
          data={[
            { value: '2', label: '2 — super' },
            { value: '3', label: '3 — elevated' },
            { value: '4', label: '4 — normal' },
          ]}
          value={tier}
          onChange={setTier}
          allowDeselect={false}
          data-testid="promote-tier"
        />
      </Group>
      <TextInput
        label="Reason"
        placeholder="what earned it"
        maxLength={512}
        value={reason}
        onChange={(e) => setReason(e.currentTarget.value)}
        data-testid="promote-reason"
      />
    </ActForm>
  )
}

function RejectedTab() {
  const session = useSession()
  const [code, setCode] = useState<string | null>(null)
  const rejected = usePoll(
    () => session.call('listRejected', { query: { limit: '100', ...(code !== null ? { code } : {}) } }),
    4000,
    [session, code],
  )
  const codes = [...new Set((rejected.data?.entries ?? []).map((e) => e.code))]
  return (
    <Stack>
      <Select
        label="Filter by code"
        placeholder="every code"
        data={[...new Set([...(code !== null ? [code] : []), ...codes])]}
        value={code}
        onChange={setCode}
        clearable
        w={280}
      />
      {rejected.error !== undefined && <ErrorState error={rejected.error} />}
      {rejected.data === undefined ? (
        <Loading label="Loading refusals…" />
      ) : rejected.data.entries.length === 0 ? (
        <EmptyState>Nothing refused{code !== null ? ` with ${code}` : ''}.</EmptyState>
      ) : (
        <DataTable
          scroll
          striped
          aria-label="Refused events and requests"
          data-testid="rejected"
          columns={['When', 'Peer', 'Kind', 'Code', 'Reason']}
        >
          {rejected.data.entries.map((e) => (
            <Table.Tr key={e.id}>
              <Table.Td>
                <When value={e.at} />
              </Table.Td>
              <Table.Td>
                <ShortDid did={e.peer} />
              </Table.Td>
              <Table.Td>{e.kind}</Table.Td>
              <Table.Td>
                <Code>{e.code}</Code>
              </Table.Td>
              <Table.Td>{e.reason}</Table.Td>
            </Table.Tr>
          ))}
        </DataTable>
      )}
    </Stack>
  )
}

function AuditTab() {
  const session = useSession()
  const [action, setAction] = useState('')
  const verify = usePoll(() => session.call('verifyAudit'), 15000, [session])
  const log = usePoll(
    () =>
      session.call('listAudit', {
        // The newest rows (issue 14: a log is read newest first), named where the node knows.
        query: { limit: '200', order: 'newest', ...(/^[a-z0-9_.-]+$/.test(action) ? { action } : {}) },
      }),
    5000,
    [session, action],
  )
  const rows = [...(log.data?.entries ?? [])].sort((a, b) => b.seq - a.seq)
  const names = log.data?.names ?? {}
  return (
    <Stack>
      <Card withBorder data-testid="audit-verify">
        {verify.error !== undefined ? (
          <ErrorState error={verify.error} title="Could not verify the audit log" />
        ) : verify.data === undefined ? (
          <Loading label="Verifying the audit log…" />
        ) : (
          <Group>
            <Badge color={verify.data.ok ? 'green' : 'red'} size="lg" data-ok={verify.data.ok}>
              {verify.data.ok ? 'verified' : 'altered'}
            </Badge>
            <Text size="sm">
              {verify.data.count} rows, hash-chained and signed
              {verify.data.head !== null && (
                <>
                  {' '}
                  · head #{verify.data.head.seq} <Code>{verify.data.head.hash.slice(0, 16)}…</Code>
                </>
              )}
            </Text>
            <Button size="xs" variant="light" onClick={verify.reload} loading={verify.loading}>
              Verify again
            </Button>
          </Group>
        )}
        {verify.data !== undefined && verify.data.problems.length > 0 && (
          <Stack gap={2} mt="xs" role="alert">
            {verify.data.problems.map((p) => (
              <Text size="sm" c="red" key={`${p.seq}-${p.kind}`}>
                row {p.seq}: <Code>{p.kind}</Code> {p.message}
              </Text>
            ))}
          </Stack>
        )}
      </Card>
      <TextInput
        label="Filter by action prefix"
        placeholder="e.g. connection or federation.refused"
        value={action}
        onChange={(e) => setAction(e.currentTarget.value.toLowerCase())}
        w={320}
      />
      {log.error !== undefined && <ErrorState error={log.error} />}
      {log.data === undefined ? (
        <Loading label="Loading the audit log…" />
      ) : rows.length === 0 ? (
        <EmptyState>No audit rows{action !== '' ? ` for “${action}”` : ''}.</EmptyState>
      ) : (
        <DataTable
          scroll={{ h: 480 }}
          striped
          stickyHeader
          aria-label="Audit log"
          data-testid="audit"
          columns={['#', 'When', 'Action', 'Actor', 'Subject', 'Details']}
        >
          {rows.map((r) => (
            <Table.Tr key={r.seq}>
              <Table.Td>{r.seq}</Table.Td>
              <Table.Td>
                <When value={r.ts} />
              </Table.Td>
              <Table.Td>
                <Code>{r.action}</Code>
              </Table.Td>
              <Table.Td>
                <ShortDid did={r.actor} name={r.actor === null ? undefined : names[r.actor]} />
              </Table.Td>
              <Table.Td>
                {r.subject?.startsWith('did:') ? (
                  <ShortDid did={r.subject} name={names[r.subject]} />
                ) : (
                  <Text size="xs" ff="monospace" lineClamp={1} title={r.subject ?? ''}>
                    {r.subject ?? '—'}
                  </Text>
                )}
              </Table.Td>
              <Table.Td>
                <Text
                  size="xs"
                  lineClamp={3}
                  title={JSON.stringify(r.details, null, 2)}
                  maw={360}
                  style={{ overflowWrap: 'anywhere' }}
                  data-testid="audit-details"
                >
                  {readableDetails(r.details, names)}
                </Text>
              </Table.Td>
            </Table.Tr>
          ))}
        </DataTable>
      )}
    </Stack>
  )
}

const DID_KEY = /^did:key:z[1-9A-HJ-NP-Za-km-z]+$/

const DID_LISTS = [
  { key: 'allow', label: 'Allow', description: 'Mesh dids allowed in allowlist mode (Enter adds one)' },
  { key: 'deny', label: 'Deny', description: 'Mesh dids always refused' },
] as const

function PolicyTab() {
  const session = useSession()
  const current = usePoll(() => session.call('getPolicy'), 0, [session])
  const [draft, setDraft] = useState<FederationPolicy | undefined>(undefined)
  // The policy as last stored: a save sends only what differs from it (PATCH, issue 13).
  const [base, setBase] = useState<FederationPolicy | undefined>(undefined)
  const [saved, setSaved] = useState(false)
  useEffect(() => {
    if (current.data !== undefined) {
      setDraft(current.data)
      setBase(current.data)
    }
  }, [current.data])
  const save = useAction(async (p: FederationPolicy) => {
    setSaved(false)
    const stored = await session.call('patchPolicy', {
      body: base === undefined ? p : policyPatchOf(base, p),
    })
    setDraft(stored)
    setBase(stored)
    setSaved(true)
  })
  const architect = session.me.role === 'architect'
  if (current.error !== undefined && draft === undefined) return <ErrorState error={current.error} />
  if (draft === undefined) return <Loading label="Loading the policy…" />
  const set = (patch: Partial<FederationPolicy>) => {
    setSaved(false)
    setDraft({ ...draft, ...patch })
  }
  const badDids = [...draft.allow, ...draft.deny].filter((d) => !DID_KEY.test(d))
  const unchanged = base !== undefined && Object.keys(policyPatchOf(base, draft)).length === 0
  return (
    <Card
      withBorder
      component="form"
      maw={720}
      onSubmit={(e) => {
        e.preventDefault()
        void save.run(draft)
      }}
      aria-label="Federation policy"
    >
      <Stack>
        {!architect && (
          <Text size="sm" c="dimmed">
            Only the architect changes the policy; you see it read-only.
          </Text>
        )}
        <div>
          <Text size="sm" fw={500} id="policy-mode-label" mb={4}>
            Who may connect
          </Text>
          <SegmentedControl
            aria-labelledby="policy-mode-label"
            value={draft.mode}
            onChange={(v) => set({ mode: v as FederationPolicy['mode'] })}
            data={[
              { value: 'open', label: 'open' },
              { value: 'allowlist', label: 'allowlist' },
              { value: 'closed', label: 'closed' },
            ]}
            disabled={!architect}
          />
        </div>
        {DID_LISTS.map(({ key, label, description }) => (
          <TagsInput
            key={key}
            label={label}
            description={description}
            value={draft[key]}
            onChange={(dids) => set({ [key]: dids })}
            disabled={!architect}
            clearable
          />
        ))}
        {badDids.length > 0 && (
          <Text size="sm" c="red">
            Not an Ed25519 did:key: {badDids.join(', ')}
          </Text>
        )}
        <Switch
          label="Accept requests that pass the policy without asking me"
          checked={draft.autoAccept}
          onChange={(e) => set({ autoAccept: e.currentTarget.checked })}
          disabled={!architect}
        />
        <Group grow>
          <NumberInput
            label="Foreign participants per room, at most"
            min={0}
            value={draft.maxForeignParticipantsPerRoom}
            onChange={(v) =>
              set({ maxForeignParticipantsPerRoom: typeof v === 'number' ? v : Number(v) || 0 })
            }
            disabled={!architect}
          />
          <NumberInput
            label="Backfill events per request, at most"
            min={1}
            value={draft.maxBackfillEventsPerRequest}
            onChange={(v) => set({ maxBackfillEventsPerRequest: typeof v === 'number' ? v : Number(v) || 1 })}
            disabled={!architect}
          />
        </Group>
        <BackfillLimitInput
          value={draft.backfillLimit}
          onChange={(backfillLimit) => set({ backfillLimit })}
          disabled={!architect}
        />
        <ActOutcome action={save} refused="Policy not saved" done={saved} testId="policy-saved">
          Policy saved (recorded in the audit log).
        </ActOutcome>
        <Group justify="flex-end">
          <VisuallyHidden>Changes apply to new requests and shares at once.</VisuallyHidden>
          <Button
            variant="default"
            onClick={() => base !== undefined && setDraft(base)}
            disabled={!architect}
          >
            Reset
          </Button>
          <Button type="submit" loading={save.busy} disabled={!architect || badDids.length > 0 || unchanged}>
            Save policy
          </Button>
        </Group>
      </Stack>
    </Card>
  )
}
