import { Card, Grid, Group, Stack, Table, Text, Title } from '@mantine/core'
import type { ReactNode } from 'react'
import type { ConnectionStatus, ConnectionView } from '../../../api/index.ts'
import { usePoll } from '../lib/hooks.ts'
import { useSession } from '../lib/session.tsx'
import { type TrafficSample, useTraffic } from '../lib/traffic.ts'
import { ErrorState, NameAndDid, StatusBadge, When } from './common.tsx'
import { DataTable } from './DataTable.tsx'

interface GraphNode {
  did: string
  name: string
  status: string
  /** The connection state with this mesh, if any. */
  link: ConnectionStatus | undefined
  sent: number
  received: number
}

const LINK_STYLE: Record<string, { stroke: string; dash?: string; width: number }> = {
  accepted: { stroke: 'var(--mantine-color-green-6)', width: 3 },
  degraded: { stroke: 'var(--mantine-color-orange-6)', width: 3, dash: '8 4' },
  pending: { stroke: 'var(--mantine-color-blue-5)', width: 2, dash: '6 6' },
  declined: { stroke: 'var(--mantine-color-red-4)', width: 1, dash: '2 6' },
  disconnected: { stroke: 'var(--mantine-color-gray-5)', width: 1, dash: '2 6' },
}
const NODE_FILL: Record<string, string> = {
  online: 'var(--mantine-color-green-5)',
  idle: 'var(--mantine-color-yellow-5)',
  offline: 'var(--mantine-color-gray-5)',
  unknown: 'var(--mantine-color-gray-3)',
}

/** The latest connection per peer (a peer may have older, ended ones). */
function latestByPeer(connections: ConnectionView[]): Map<string, ConnectionView> {
  const out = new Map<string, ConnectionView>()
  for (const c of connections) {
    const prev = out.get(c.peerDid)
    if (prev === undefined || c.updatedAt > prev.updatedAt) out.set(c.peerDid, c)
  }
  return out
}

/** A picture of the federation: the meshes this one knows and its links, and traffic over time. */
export function FederationMap() {
  const session = useSession()
  const meshes = usePoll(() => session.call('publicMeshes', { query: { limit: '100' } }), 5000, [session])
  const connections = usePoll(() => session.call('listConnections'), 3000, [session])
  const peers = usePoll(() => session.call('listPeers'), 3000, [session])
  const traffic = useTraffic()

  const byPeer = latestByPeer(connections.data ?? [])
  const nodes = new Map<string, GraphNode>()
  for (const m of meshes.data?.meshes ?? []) {
    if (m.did === session.health.did) continue
    nodes.set(m.did, { did: m.did, name: m.name, status: m.status, link: undefined, sent: 0, received: 0 })
  }
  for (const p of peers.data ?? []) {
    const n = nodes.get(p.did) ?? {
      did: p.did,
      name: p.name ?? 'unknown mesh',
      status: 'unknown',
      link: undefined,
      sent: 0,
      received: 0,
    }
    n.sent = p.eventsSent24h
    n.received = p.eventsReceived24h
    nodes.set(p.did, n)
  }
  for (const [did, c] of byPeer) {
    const n = nodes.get(did) ?? {
      did,
      name: c.peerName ?? 'unknown mesh',
      status: 'unknown',
      link: undefined,
      sent: c.eventsSent24h,
      received: c.eventsReceived24h,
    }
    n.link = c.status
    nodes.set(did, n)
  }
  const list = [...nodes.values()].sort((a, b) => a.name.localeCompare(b.name))
  const error = meshes.error ?? connections.error ?? peers.error

  return (
    <Stack>
      <Title order={2}>Federation</Title>
      {error !== undefined && <ErrorState error={error} title="Part of the picture is missing" />}
      <Grid>
        <Grid.Col span={{ base: 12, lg: 7 }}>
          <Card withBorder>
            <Title order={3} size="h5">
              Meshes this one knows, and its links
            </Title>
            <Graph self={session.meshName} nodes={list} />
            <Legend />
          </Card>
        </Grid.Col>
        <Grid.Col span={{ base: 12, lg: 5 }}>
          <Card withBorder>
            <Title order={3} size="h5">
              Events over time
            </Title>
            <TrafficChart samples={traffic} />
          </Card>
        </Grid.Col>
      </Grid>
      <DataTable
        aria-label="Meshes and links (the graph as a table)"
        striped
        columns={['Mesh', 'Status', 'Link', 'Events 24 h (sent / received)', 'Last seen']}
      >
        {list.map((n) => (
          <Table.Tr key={n.did}>
            <Table.Td>
              <NameAndDid name={n.name} did={n.did} />
            </Table.Td>
            <Table.Td>
              <StatusBadge status={n.status} />
            </Table.Td>
            <Table.Td>{n.link !== undefined ? <StatusBadge status={n.link} /> : 'not connected'}</Table.Td>
            <Table.Td>
              {n.sent} / {n.received}
            </Table.Td>
            <Table.Td>
              <When value={(peers.data ?? []).find((p) => p.did === n.did)?.lastSeen ?? null} />
            </Table.Td>
          </Table.Tr>
        ))}
      </DataTable>
    </Stack>
  )
}

function Graph({ self, nodes }: { self: string; nodes: GraphNode[] }) {
  const W = 560
  const H = 380
  const cx = W / 2
  const cy = H / 2
  const r = Math.min(W, H) / 2 - 60
  const placed = nodes.map((n, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(nodes.length, 1)
    return { ...n, a, x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) }
  })
  const connected = nodes.filter((n) => n.link === 'accepted' || n.link === 'degraded').length
  return (
    <Figure
      width={W}
      height={H}
      id="graph"
      testId="federation-graph"
      title="Federation graph"
      desc={`${self} knows ${nodes.length} other meshes and is connected to ${connected}.`}
    >
      {placed.map((n) => {
        const style = n.link !== undefined ? LINK_STYLE[n.link] : undefined
        if (style === undefined) return null
        return (
          <line
            key={`edge-${n.did}`}
            x1={cx + 28 * Math.cos(n.a)}
            y1={cy + 28 * Math.sin(n.a)}
            x2={n.x - 18 * Math.cos(n.a)}
            y2={n.y - 18 * Math.sin(n.a)}
            stroke={style.stroke}
            strokeWidth={style.width}
            strokeDasharray={style.dash}
            data-testid="graph-edge"
            data-link={n.link}
          />
        )
      })}
      {placed.map((n) => {
        // Labels sit outside the ring, away from the edges.
        const cos = Math.cos(n.a)
        const lx = n.x + 26 * cos
        const ly = n.y + 30 * Math.sin(n.a) + 4
        const anchor = cos > 0.3 ? 'start' : cos < -0.3 ? 'end' : 'middle'
        // Above the ring's top the second line goes above the name, clear of the node.
        const statsY = Math.sin(n.a) < -0.3 ? ly - 15 : ly + 15
        return (
          <g key={n.did} data-testid="graph-node" data-name={n.name}>
            <circle
              cx={n.x}
              cy={n.y}
              r={18}
              fill={NODE_FILL[n.status] ?? NODE_FILL.unknown}
              stroke="var(--mantine-color-default-border)"
            />
            <text x={lx} y={ly} textAnchor={anchor} fontSize={13} fill="var(--mantine-color-text)">
              {n.name}
            </text>
            {n.link === 'accepted' && (
              <text x={lx} y={statsY} textAnchor={anchor} fontSize={11} fill="var(--mantine-color-dimmed)">
                ↑{n.sent} ↓{n.received}
              </text>
            )}
          </g>
        )
      })}
      <circle cx={cx} cy={cy} r={28} fill="var(--mantine-color-blue-6)" />
      <text x={cx} y={cy + 5} textAnchor="middle" fontSize={13} fontWeight={700} fill="white">
        {self.length > 10 ? `${self.slice(0, 9)}…` : self}
      </text>
      {nodes.length === 0 && (
        <text x={cx} y={cy + 60} textAnchor="middle" fontSize={13} fill="var(--mantine-color-dimmed)">
          No other mesh known yet
        </text>
      )}
    </Figure>
  )
}

function Legend() {
  const item = (label: string, stroke: string, dash?: string) => (
    <Group gap={4} key={label}>
      <svg width="28" height="8" aria-hidden="true">
        <line x1="0" y1="4" x2="28" y2="4" stroke={stroke} strokeWidth="3" strokeDasharray={dash} />
      </svg>
      <Text size="xs">{label}</Text>
    </Group>
  )
  return (
    <Group gap="md" mt="xs">
      {item('connected', LINK_STYLE.accepted?.stroke ?? '')}
      {item('degraded', LINK_STYLE.degraded?.stroke ?? '', '8 4')}
      {item('pending', LINK_STYLE.pending?.stroke ?? '', '6 6')}
      {item('ended', LINK_STYLE.disconnected?.stroke ?? '', '2 6')}
      <Text size="xs" c="dimmed">
        node colour: online / idle / offline
      </Text>
    </Group>
  )
}

/** Events per sampling interval (deltas of the 24 h counters), sent and received. */
function TrafficChart({ samples }: { samples: TrafficSample[] }) {
  const W = 420
  const H = 200
  const pad = { l: 36, r: 10, t: 10, b: 28 }
  const deltas = samples.slice(1).map((s, i) => {
    const prev = samples[i] as TrafficSample
    return {
      t: s.t,
      sent: Math.max(0, s.sent - prev.sent),
      received: Math.max(0, s.received - prev.received),
    }
  })
  const last = samples.at(-1)
  if (deltas.length < 2) {
    return (
      <Text size="sm" c="dimmed" py="xl" ta="center">
        Collecting samples (every 5 s)…
        {last !== undefined && ` In the last 24 h: ${last.sent} sent, ${last.received} received.`}
      </Text>
    )
  }
  const max = Math.max(1, ...deltas.map((d) => Math.max(d.sent, d.received)))
  const t0 = deltas[0]?.t ?? 0
  const t1 = deltas.at(-1)?.t ?? t0 + 1
  const x = (t: number) => pad.l + ((W - pad.l - pad.r) * (t - t0)) / Math.max(1, t1 - t0)
  const y = (v: number) => H - pad.b - ((H - pad.t - pad.b) * v) / max
  const line = (key: 'sent' | 'received') =>
    deltas.map((d) => `${x(d.t).toFixed(1)},${y(d[key]).toFixed(1)}`).join(' ')
  const totalSent = deltas.reduce((n, d) => n + d.sent, 0)
  const totalReceived = deltas.reduce((n, d) => n + d.received, 0)
  const minutes = Math.max(1, Math.round((t1 - t0) / 60000))
  return (
    <Stack gap={4}>
      <Figure
        width={W}
        height={H}
        id="chart"
        testId="traffic-chart"
        title={`Events per 5 s over the last ${minutes} min: ${totalSent} sent, ${totalReceived} received`}
      >
        <line
          x1={pad.l}
          y1={H - pad.b}
          x2={W - pad.r}
          y2={H - pad.b}
          stroke="var(--mantine-color-default-border)"
        />
        <line x1={pad.l} y1={pad.t} x2={pad.l} y2={H - pad.b} stroke="var(--mantine-color-default-border)" />
        <text x={pad.l - 6} y={pad.t + 10} textAnchor="end" fontSize={11} fill="var(--mantine-color-dimmed)">
          {max}
        </text>
        <text x={pad.l - 6} y={H - pad.b} textAnchor="end" fontSize={11} fill="var(--mantine-color-dimmed)">
          0
        </text>
        <text x={pad.l} y={H - 8} fontSize={11} fill="var(--mantine-color-dimmed)">
          {new Date(t0).toLocaleTimeString()}
        </text>
        <text x={W - pad.r} y={H - 8} textAnchor="end" fontSize={11} fill="var(--mantine-color-dimmed)">
          {new Date(t1).toLocaleTimeString()}
        </text>
        <polyline points={line('sent')} fill="none" stroke="var(--mantine-color-blue-6)" strokeWidth={2} />
        <polyline
          points={line('received')}
          fill="none"
          stroke="var(--mantine-color-teal-6)"
          strokeWidth={2}
          strokeDasharray="5 3"
        />
      </Figure>
      <Group gap="md">
        <Text size="xs" c="blue">
          ━ sent ({totalSent})
        </Text>
        <Text size="xs" c="teal">
          ╌ received ({totalReceived})
        </Text>
      </Group>
    </Stack>
  )
}

/** An svg drawing, read to screen readers as one image by its title (`<id>-title`) and description. */
function Figure({
  width,
  height,
  id,
  testId,
  title,
  desc,
  children,
}: {
  width: number
  height: number
  id: string
  testId: string
  title: string
  desc?: string
  children: ReactNode
}) {
  return (
    <svg
      viewBox={`0 0 ${width} ${height}`}
      width="100%"
      role="img"
      aria-labelledby={desc === undefined ? `${id}-title` : `${id}-title ${id}-desc`}
      data-testid={testId}
    >
      <title id={`${id}-title`}>{title}</title>
      {desc !== undefined && <desc id={`${id}-desc`}>{desc}</desc>}
      {children}
    </svg>
  )
}
