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
  Textarea,
  TextInput,
  Title,
} from '@mantine/core'
import { useDebouncedValue } from '@mantine/hooks'
import { useState } from 'react'
import { CONNECTION_ACT_ROUTES } from '../../../api/connection-acts.ts'
import type { ConnectionView, MeshStatus, PeerView, PublicMesh, RouteOutput } from '../../../api/index.ts'
import type { ApiError } from '../lib/api.ts'
import { browseAction } from '../lib/browse.ts'
import { useAction, usePoll } from '../lib/hooks.ts'
import { canDisconnect, canPause, canResume } from '../lib/lifecycle.ts'
import { useSession } from '../lib/session.tsx'
import { ACTS } from '../lib/ucan.ts'
import { EmptyState, ErrorState, Loading, NameAndDid, ShortDid, StatusBadge, When } from './common.tsx'
import { DataTable } from './DataTable.tsx'
// reachable by URL (SPEC §10)
import { ConnectByUrl, MeshProfileLine, Reachability } from './MeshProfile.tsx'
import { RoutedTabs } from './RoutedTabs.tsx'

/** The address to dial: a multiaddr that ends in /p2p/<peer id> when one is known, else the did. */
function targetOf(mesh: PublicMesh): string {
  const withPeer = mesh.multiaddrs.find((a) => a.includes('/p2p/'))
  if (withPeer !== undefined) return withPeer
  const first = mesh.multiaddrs[0]
  if (first !== undefined && mesh.peerId !== undefined) return `${first}/p2p/${mesh.peerId}`
  return mesh.did
}

function useConnections() {
  const session = useSession()
  const connections = usePoll(() => session.call('listConnections'), 2000, [session])
  const peers = usePoll(() => session.call('listPeers'), 3000, [session])
  return { connections, peers }
}

/**
 * Seed 003's ConnectionsPanel: Browse (meshes from the registry and the DHT),
 * Connections (state and peer health), Requests (pending both ways). Every decision
 * is an act signed in this browser.
 */
export function ConnectionsPanel() {
  const { connections, peers } = useConnections()
  const inbound = (connections.data ?? []).filter((c) => c.direction === 'inbound' && c.status === 'pending')
  return (
    <Stack>
      <Title order={2}>Connections</Title>
      <RoutedTabs
        base="/connections"
        label="Connections panel"
        tabs={[
          { value: 'browse', label: 'Browse', panel: <Browse connections={connections.data ?? []} /> },
          {
            value: 'connections',
            label: 'Connections',
            panel: (
              <ConnectionsTab
                connections={connections.data}
                peers={peers.data ?? []}
                error={connections.error}
                reload={connections.reload}
              />
            ),
          },
          {
            value: 'requests',
            label: 'Requests',
            rightSection:
              inbound.length > 0 ? (
                <Badge size="xs" circle aria-label={`${inbound.length} inbound requests`}>
                  {inbound.length}
                </Badge>
              ) : null,
            panel: (
              <RequestsTab
                connections={connections.data}
                error={connections.error}
                reload={connections.reload}
              />
            ),
          },
        ]}
      />
    </Stack>
  )
}

function Browse({ connections }: { connections: ConnectionView[] }) {
  const session = useSession()
  const [query, setQuery] = useState('')
  const [status, setStatus] = useState('all')
  const [q] = useDebouncedValue(query, 250)
  const [capability, setCapability] = useState('') // reachable by URL (SPEC §10)
  const [cap] = useDebouncedValue(capability, 250)
  const [target, setTarget] = useState<PublicMesh | undefined>(undefined)
  const meshes = usePoll(
    () => {
      const query = {
        limit: '100',
        ...(q.trim() !== '' ? { q: q.trim() } : {}),
        ...(status !== 'all' ? { status: status as MeshStatus } : {}),
        ...(cap.trim() !== '' ? { capability: cap.trim() } : {}),
      }
      return session.call('publicMeshes', { query })
    },
    5000,
    [session, q, status, cap],
  )
  const list = (meshes.data?.meshes ?? []).filter((m) => m.did !== session.health.did)
  const stateOf = (did: string) => connections.find((c) => c.peerDid === did || c.peerKeyDid === did)?.status

  return (
    <Stack>
      <Reachability />
      <ConnectByUrl />
      <Group align="end">
        <TextInput
          label="Search meshes"
          placeholder="name or did"
          value={query}
          onChange={(e) => setQuery(e.currentTarget.value)}
          w={280}
        />
        <TextInput
          label="Capability"
          placeholder="e.g. agent/invoke"
          value={capability}
          onChange={(e) => setCapability(e.currentTarget.value)}
          w={200}
        />
        <div>
          <Text size="sm" fw={500} id="status-filter-label" mb={4}>
            Status
          </Text>
          <SegmentedControl
            aria-labelledby="status-filter-label"
            value={status}
            onChange={setStatus}
            data={['all', 'online', 'idle', 'offline']}
          />
        </div>
      </Group>
      {meshes.error !== undefined && <ErrorState error={meshes.error} title="Could not list meshes" />}
      {meshes.loading && meshes.data === undefined ? (
        <Loading label="Looking for meshes…" />
      ) : list.length === 0 ? (
        <EmptyState>
          No meshes found{q !== '' ? ` for “${q}”` : ''}. Meshes appear here from the registry and the DHT
          once they announce themselves (mesh start --public).
        </EmptyState>
      ) : (
        <DataTable
          scroll
          striped
          highlightOnHover
          aria-label="Meshes this node knows"
          columns={[
            'Mesh',
            'Status',
            'Members',
            'Bots',
            'Rooms',
            'Version',
            'Last heartbeat',
            'Connection',
            { hidden: 'Actions' },
          ]}
        >
          {list.map((m) => (
            <Table.Tr key={m.did} data-testid="mesh-row" data-name={m.name}>
              <Table.Td>
                <NameAndDid name={m.name} did={m.did} />
                <MeshProfileLine mesh={m} />
              </Table.Td>
              <Table.Td>
                <StatusBadge status={m.status} />
              </Table.Td>
              <Table.Td>{m.members}</Table.Td>
              <Table.Td>{m.bots}</Table.Td>
              <Table.Td>{m.rooms ?? '—'}</Table.Td>
              <Table.Td>{m.version ?? '—'}</Table.Td>
              <Table.Td>
                <When value={m.lastHeartbeat ?? null} />
              </Table.Td>
              <Table.Td>
                {stateOf(m.did) !== undefined ? <StatusBadge status={stateOf(m.did) as string} /> : '—'}
              </Table.Td>
              <Table.Td data-testid="browse-action" data-action={browseAction(connections, m.did).kind}>
                {(() => {
                  const action = browseAction(connections, m.did)
                  if (action.kind === 'request')
                    return (
                      <Button
                        size="xs"
                        onClick={() => setTarget(m)}
                        aria-label={`Request a connection with ${m.name}`}
                      >
                        Request connection
                      </Button>
                    )
                  return (
                    <Text size="xs" c="dimmed">
                      {action.label}
                    </Text>
                  )
                })()}
              </Table.Td>
            </Table.Tr>
          ))}
        </DataTable>
      )}
      {target !== undefined && <RequestModal mesh={target} onClose={() => setTarget(undefined)} />}
    </Stack>
  )
}

function RequestModal({ mesh, onClose }: { mesh: PublicMesh; onClose: () => void }) {
  const session = useSession()
  const [note, setNote] = useState('')
  const [sent, setSent] = useState<RouteOutput<'connect'> | undefined>(undefined)
  const send = useAction(async () => {
    const ucan = await session.act({ can: ACTS.connect, peer: mesh.did })
    const res = await session.call('connect', {
      body: { target: targetOf(mesh), ucan, ...(note.trim() !== '' ? { note: note.trim() } : {}) },
    })
    setSent(res)
  })
  return (
    <Modal opened onClose={onClose} title={`Request a connection with ${mesh.name}`} size="lg">
      <Stack>
        <Text size="sm">
          Your key signs a UCAN invoking <Code>{ACTS.connect}</Code> for <ShortDid did={mesh.did} />;{' '}
          {mesh.name}'s architect decides on their side.
        </Text>
        <Textarea
          label="Note to their architect (optional)"
          maxLength={1024}
          value={note}
          onChange={(e) => setNote(e.currentTarget.value)}
          autosize
          minRows={2}
        />
        {send.error !== undefined && <ErrorState error={send.error} title="Request refused" />}
        {sent !== undefined && (
          <Text c="green" role="status" data-testid="request-sent">
            Request sent: connection {sent.id} is {sent.status}.
          </Text>
        )}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            {sent !== undefined ? 'Close' : 'Cancel'}
          </Button>
          <Button onClick={() => void send.run()} loading={send.busy}>
            Sign and send request
          </Button>
        </Group>
      </Stack>
    </Modal>
  )
}

/** Signs and posts accept/decline/disconnect (and pause/resume) for a connection. */
function useDecision(reload: () => void) {
  const session = useSession()
  return useAction(async (c: ConnectionView, what: keyof typeof CONNECTION_ACT_ROUTES) => {
    try {
      const ucan = await session.act({ can: ACTS[what], connection: c.id })
      await session.call(CONNECTION_ACT_ROUTES[what], { params: { id: c.id }, body: { ucan } })
    } finally {
      // also after a refusal: a conflict means the list here was stale
      reload()
    }
  })
}

function ConnectionsTab({
  connections,
  peers,
  error,
  reload,
}: {
  connections: ConnectionView[] | undefined
  peers: PeerView[]
  error: ApiError | undefined
  reload: () => void
}) {
  const decide = useDecision(reload)
  const [confirm, setConfirm] = useState<ConnectionView | undefined>(undefined)
  if (connections === undefined)
    return error ? <ErrorState error={error} /> : <Loading label="Loading connections…" />
  const rows = connections.filter((c) => c.status !== 'pending')
  const peerOf = (c: ConnectionView) => peers.find((p) => p.connectionId === c.id || p.did === c.peerDid)
  return (
    <Stack>
      {error !== undefined && <ErrorState error={error} title="Could not refresh" />}
      {decide.error !== undefined && <ErrorState error={decide.error} onClose={decide.clear} />}
      {rows.length === 0 ? (
        <EmptyState>No connections yet. Find a mesh under Browse and request one.</EmptyState>
      ) : (
        <DataTable
          scroll
          striped
          aria-label="Connections with other meshes"
          columns={[
            'Peer',
            'Direction',
            'State',
            'Agreement',
            'Last seen',
            'Last error',
            'Events 24 h',
            'Key fingerprint',
            { hidden: 'Actions' },
          ]}
        >
          {rows.map((c) => {
            const p = peerOf(c)
            const lastError = c.lastError ?? p?.lastError ?? null
            return (
              <Table.Tr
                key={c.id}
                data-testid="connection-row"
                data-peer={c.peerName ?? c.peerDid}
                data-status={c.status}
              >
                <Table.Td>
                  <NameAndDid name={c.peerName ?? p?.name ?? 'unknown mesh'} did={c.peerDid} />
                </Table.Td>
                <Table.Td>{c.direction}</Table.Td>
                <Table.Td>
                  {/* the state and the button that toggles it: in view at 390 px, where the table scrolls */}
                  <Stack gap={4} align="flex-start">
                    <StatusBadge status={c.status} />
                    {c.status === 'paused' && (
                      <Text size="xs" c="grape" maw={140} data-testid="paused-note">
                        ⏸ nothing syncs; outbox held
                      </Text>
                    )}
                    <PauseButton connection={c} decide={decide} />
                  </Stack>
                </Table.Td>
                <Table.Td>v{c.agreementVersion}</Table.Td>
                <Table.Td>
                  <When value={c.lastSeen ?? p?.lastSeen ?? null} />
                </Table.Td>
                <Table.Td>
                  {lastError === null ? (
                    '—'
                  ) : (
                    <Text size="xs" title={lastError.message}>
                      <Code>{lastError.code}</Code> {lastError.kind}
                    </Text>
                  )}
                </Table.Td>
                <Table.Td>
                  <Text size="sm" aria-label={`${c.eventsSent24h} sent, ${c.eventsReceived24h} received`}>
                    ↑{c.eventsSent24h} ↓{c.eventsReceived24h}
                  </Text>
                </Table.Td>
                <Table.Td>
                  <Text ff="monospace" size="xs" maw={180} style={{ overflowWrap: 'anywhere' }}>
                    {c.peerKeyFingerprint ?? p?.keyFingerprint ?? '—'}
                  </Text>
                </Table.Td>
                <Table.Td>
                  {canDisconnect(c) && (
                    <Button
                      size="xs"
                      color="red"
                      variant="light"
                      onClick={() => setConfirm(c)}
                      aria-label={`Disconnect from ${c.peerName ?? c.peerDid}`}
                    >
                      Disconnect
                    </Button>
                  )}
                </Table.Td>
              </Table.Tr>
            )
          })}
        </DataTable>
      )}
      <Modal
        opened={confirm !== undefined}
        onClose={() => setConfirm(undefined)}
        title="End this connection?"
      >
        <Stack>
          <Text size="sm">
            Your key signs <Code>{ACTS.disconnect}</Code>. Shared rooms stop syncing with{' '}
            {confirm?.peerName ?? 'this mesh'}; a new request makes agreement v
            {(confirm?.agreementVersion ?? 0) + 1}.
          </Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setConfirm(undefined)}>
              Keep it
            </Button>
            <Button
              color="red"
              loading={decide.busy}
              onClick={async () => {
                if (confirm !== undefined) await decide.run(confirm, 'disconnect')
                setConfirm(undefined)
              }}
            >
              Sign and disconnect
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  )
}

// paused links (issue 13)
/** Pause (an accepted link) or Resume (a paused one): a `connection/pause|resume` act signed here. */
function PauseButton({
  connection: c,
  decide,
}: {
  connection: ConnectionView
  decide: ReturnType<typeof useDecision>
}) {
  const op = canPause(c) ? 'pause' : canResume(c) ? 'resume' : undefined
  if (op === undefined) return null
  const button = PAUSE_BUTTONS[op]
  return (
    <Button
      size="xs"
      variant={button.variant}
      color="grape"
      loading={decide.busy}
      onClick={() => void decide.run(c, op)}
      aria-label={`${button.label} the link with ${c.peerName ?? c.peerDid}`}
      title={button.title}
    >
      {button.label}
    </Button>
  )
}

const PAUSE_BUTTONS = {
  pause: {
    label: 'Pause',
    variant: 'light',
    title: "Nothing syncs while paused; this mesh's outbox holds what it would send",
  },
  resume: {
    label: 'Resume',
    variant: 'filled',
    title: 'The outbox delivers what it held; shared rooms catch up',
  },
} as const

function RequestsTab({
  connections,
  error,
  reload,
}: {
  connections: ConnectionView[] | undefined
  error: ApiError | undefined
  reload: () => void
}) {
  const decide = useDecision(reload)
  // Accepting is consent on this mesh's behalf: it is confirmed first (issue 14).
  const [accepting, setAccepting] = useState<ConnectionView | undefined>(undefined)
  if (connections === undefined)
    return error ? <ErrorState error={error} /> : <Loading label="Loading requests…" />
  const pending = connections.filter((c) => c.status === 'pending')
  const inbound = pending.filter((c) => c.direction === 'inbound')
  const outbound = pending.filter((c) => c.direction === 'outbound')
  const row = (c: ConnectionView) => (
    <Table.Tr key={c.id} data-testid={`${c.direction}-request`} data-peer={c.peerName ?? c.peerDid}>
      <Table.Td>
        <NameAndDid name={c.peerName ?? 'unknown mesh'} did={c.peerDid} />
      </Table.Td>
      <Table.Td>{c.note ?? <Text c="dimmed">no note</Text>}</Table.Td>
      <Table.Td>
        <When value={c.createdAt} />
      </Table.Td>
      <Table.Td>
        {c.lastError !== null ? (
          <Code title={c.lastError.message}>{c.lastError.code}</Code>
        ) : (
          <Text c="dimmed" size="sm">
            —
          </Text>
        )}
      </Table.Td>
      <Table.Td>
        <Group gap="xs" wrap="nowrap">
          {c.direction === 'inbound' ? (
            <>
              <Button size="xs" onClick={() => setAccepting(c)} loading={decide.busy}>
                Accept
              </Button>
              <Button size="xs" variant="light" color="red" onClick={() => void decide.run(c, 'decline')}>
                Decline
              </Button>
            </>
          ) : (
            <Button size="xs" variant="light" color="gray" onClick={() => void decide.run(c, 'disconnect')}>
              Withdraw
            </Button>
          )}
        </Group>
      </Table.Td>
    </Table.Tr>
  )
  const section = (title: string, list: ConnectionView[], label: string, empty: string) => (
    <>
      <Title order={3} size="h4">
        {title}
      </Title>
      {list.length === 0 ? (
        <EmptyState>{empty}</EmptyState>
      ) : (
        <DataTable
          aria-label={label}
          columns={['Mesh', 'Note', 'Asked', 'Last error', { hidden: 'Decision' }]}
        >
          {list.map(row)}
        </DataTable>
      )}
    </>
  )
  return (
    <Stack>
      {error !== undefined && <ErrorState error={error} title="Could not refresh" />}
      {decide.error !== undefined && <ErrorState error={decide.error} onClose={decide.clear} />}
      {section('Inbound — waiting for you', inbound, 'Inbound requests', 'No inbound requests.')}
      {section('Outbound — waiting for them', outbound, 'Outbound requests', 'No outbound requests.')}
      <Modal
        opened={accepting !== undefined}
        onClose={() => setAccepting(undefined)}
        title={`Connect with ${accepting?.peerName ?? 'this mesh'}?`}
      >
        <Stack>
          <Text size="sm">
            Your key signs <Code>{ACTS.accept}</Code>. {accepting?.peerName ?? 'This mesh'} can then share
            rooms with yours and invoke what your manifest offers under a chain; either side can end it.
          </Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setAccepting(undefined)}>
              Not now
            </Button>
            <Button
              loading={decide.busy}
              onClick={async () => {
                if (accepting !== undefined) await decide.run(accepting, 'accept')
                setAccepting(undefined)
              }}
            >
              Sign and accept
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  )
}
