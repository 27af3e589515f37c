import { Anchor, Badge, Button, Code, Group, Stack, Text, TextInput, Tooltip } from '@mantine/core'
import { useState } from 'react'
import type { MeshUrlView, PublicMesh, RouteOutput } from '../../../api/index.ts'
import { useAction, usePoll } from '../lib/hooks.ts'
import { useSession } from '../lib/session.tsx'
import { ACTS } from '../lib/ucan.ts'
import { ActOutcome, ErrorState, ShortDid } from './common.tsx'

/**
 * Reachable by URL (SPEC §10) in the console: what a mesh says of itself in the Browse
 * list (a link to its page, its description, agents and capabilities), how this node is
 * reached (GET /api/health `reachability`), and connecting to a mesh by its URL.
 */

/** The page a mesh links to: its HTTP base, else its manifest. */
export function meshPage(mesh: Pick<PublicMesh, 'http' | 'manifestUrl'>): string | undefined {
  const url = mesh.http ?? mesh.manifestUrl
  return url !== undefined && /^https?:\/\//.test(url) ? url : undefined
}

/** Under a mesh's name in Browse: link, description, agents (skills on hover), capabilities. */
export function MeshProfileLine({ mesh }: { mesh: PublicMesh }) {
  const page = meshPage(mesh)
  return (
    <Stack gap={2} data-testid="mesh-profile">
      {page !== undefined && (
        <Anchor href={page} target="_blank" rel="noopener noreferrer" size="xs" data-testid="mesh-page">
          {page}
        </Anchor>
      )}
      {mesh.description !== undefined && mesh.description !== '' && (
        <Text size="xs" c="dimmed" data-testid="mesh-description">
          {mesh.description}
        </Text>
      )}
      {(mesh.agents ?? []).length > 0 && (
        <Group gap={4} data-testid="mesh-agents">
          {(mesh.agents ?? []).map((a) => (
            <Tooltip key={a.name} label={a.skills.length > 0 ? a.skills.join(', ') : 'no skills listed'}>
              <Badge size="xs" variant="light" data-agent={a.name}>
                🤖 {a.name}
              </Badge>
            </Tooltip>
          ))}
        </Group>
      )}
      {(mesh.capabilities ?? []).length > 0 && (
        <Group gap={4} data-testid="mesh-capabilities">
          {(mesh.capabilities ?? []).map((c) => (
            <Badge key={c} size="xs" variant="outline" color="gray" data-capability={c}>
              {c}
            </Badge>
          ))}
        </Group>
      )}
    </Stack>
  )
}

/** How this node is reached: direct, relayed (with its relay addresses) or not yet known. */
export function Reachability() {
  const session = useSession()
  // It changes as AutoNAT answers and reservations are taken: asked again now and then.
  const health = usePoll(() => session.call('health'), 15_000, [session])
  const r = (health.data ?? session.health).reachability
  if (r === undefined) return null
  const label = r.status === 'public' ? 'direct' : r.status
  return (
    <Group gap="xs" data-testid="reachability" data-status={r.status}>
      <Text size="sm">This mesh is reached</Text>
      <Badge
        size="sm"
        variant="light"
        color={r.status === 'public' ? 'green' : r.status === 'relayed' ? 'blue' : 'gray'}
      >
        {label}
      </Badge>
      {r.relay && (
        <Badge size="sm" variant="outline">
          relays for others
        </Badge>
      )}
      {r.relayAddresses.length > 0 && (
        <Tooltip label={r.relayAddresses.join('\n')} multiline>
          <Text size="xs" c="dimmed">
            via {r.relayAddresses.length} relay address{r.relayAddresses.length === 1 ? '' : 'es'}
          </Text>
        </Tooltip>
      )}
    </Group>
  )
}

/** `mesh connect <url>` in the console: the node fetches and verifies the manifest, the act names its did. */
export function ConnectByUrl({ onSent }: { onSent?: () => void }) {
  const session = useSession()
  const [url, setUrl] = useState('')
  const [found, setFound] = useState<MeshUrlView | undefined>(undefined)
  const [sent, setSent] = useState<RouteOutput<'connect'> | undefined>(undefined)
  const look = useAction(async () => {
    setSent(undefined)
    setFound(await session.call('resolveMeshUrl', { query: { url: url.trim() } }))
  })
  const send = useAction(async () => {
    if (found === undefined) return
    const ucan = await session.act({ can: ACTS.connect, peer: found.did })
    setSent(await session.call('connect', { body: { target: url.trim(), ucan } }))
    onSent?.()
  })
  return (
    <Stack gap="xs">
      <Group align="end">
        <TextInput
          label="Connect by URL"
          placeholder="https://mesh.example.org"
          value={url}
          onChange={(e) => {
            setUrl(e.currentTarget.value)
            setFound(undefined)
          }}
          w={360}
        />
        <Button
          variant="light"
          onClick={() => void look.run()}
          loading={look.busy}
          disabled={!/^https?:\/\/./i.test(url.trim())}
        >
          Look up
        </Button>
      </Group>
      {look.error !== undefined && (
        <ErrorState error={look.error} title="The manifest was refused" onClose={look.clear} />
      )}
      {found !== undefined && (
        <Group data-testid="url-mesh" data-name={found.name}>
          <Text size="sm">
            <b>{found.name}</b> <ShortDid did={found.did} /> — its manifest is signed by its key.
          </Text>
          <Button size="xs" onClick={() => void send.run()} loading={send.busy} disabled={sent !== undefined}>
            Sign and request by URL
          </Button>
        </Group>
      )}
      <ActOutcome
        action={send}
        refused="The request was refused"
        done={sent !== undefined}
        testId="url-request-sent"
      >
        Request {sent?.id} sent: <Code>{sent?.status}</Code>
      </ActOutcome>
    </Stack>
  )
}
