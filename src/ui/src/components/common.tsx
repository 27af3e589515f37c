import { Alert, Badge, Code, Group, Loader, Text, Tooltip } from '@mantine/core'
import type { ReactNode } from 'react'
import type { ApiError } from '../lib/api.ts'

/** A refusal or failure, readable, with its MESH_… code (role=alert: announced at once). */
export function ErrorState({
  error,
  title,
  onClose,
}: {
  error: ApiError
  title?: string
  onClose?: () => void
}) {
  return (
    <Alert
      color="red"
      variant="light"
      role="alert"
      title={title ?? 'Refused'}
      data-testid="error"
      data-code={error.code}
      {...(onClose !== undefined ? { withCloseButton: true, onClose, closeButtonLabel: 'Dismiss' } : {})}
    >
      <Group gap="xs" wrap="nowrap" align="baseline">
        <Code fw={700}>{error.code}</Code>
        <Text size="sm">{error.message}</Text>
      </Group>
    </Alert>
  )
}

export function EmptyState({ children }: { children: ReactNode }) {
  return (
    <Text c="dimmed" size="sm" py="md" ta="center" data-testid="empty">
      {children}
    </Text>
  )
}

export function Loading({ label }: { label: string }) {
  return (
    <Group gap="xs" py="md" justify="center" role="status">
      <Loader size="sm" />
      <Text size="sm" c="dimmed">
        {label}
      </Text>
    </Group>
  )
}

/** `did:key:z6Mk…abcd`, with the whole did on hover and for screen readers. */
/** A did as a person reads it: its name when the node knows one (issue 14), else shortened; the whole did on hover. */
export function ShortDid({ did, name }: { did: string | null | undefined; name?: string | undefined }) {
  if (did === null || did === undefined) return <Text span>—</Text>
  const short = did.length > 24 ? `${did.slice(0, 14)}…${did.slice(-6)}` : did
  return (
    <Tooltip label={did} openDelay={300}>
      <Text span ff={name === undefined ? 'monospace' : undefined} size="xs" aria-label={did} data-did={did}>
        {name ?? short}
      </Text>
    </Tooltip>
  )
}

const STATUS_COLOR: Record<string, string> = {
  online: 'green',
  idle: 'yellow',
  offline: 'gray',
  accepted: 'green',
  connected: 'green',
  pending: 'blue',
  degraded: 'orange',
  declined: 'red',
  disconnected: 'gray',
  // paused links (issue 13)
  paused: 'grape',
  open: 'green',
  closed: 'gray',
  'caught up': 'green',
  'catching up': 'blue',
}

export function StatusBadge({ status }: { status: string }) {
  return (
    <Badge
      color={STATUS_COLOR[status] ?? 'gray'}
      variant="light"
      data-status={status}
      style={{ flexShrink: 0 }}
      styles={{ label: { overflow: 'visible' } }}
    >
      {status}
    </Badge>
  )
}

/** 🌐 marks what crosses a mesh boundary: a federated room, a foreign participant. */
export function FederatedBadge({ label = 'federated' }: { label?: string }) {
  return (
    <span role="img" aria-label={label} title={label} data-testid="federated-badge">
      🌐
    </span>
  )
}

export function ago(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return 'never'
  const t = typeof value === 'number' ? value : Date.parse(value)
  if (Number.isNaN(t)) return String(value)
  const s = Math.round((Date.now() - t) / 1000)
  if (s < 5) return 'just now'
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`
  return new Date(t).toLocaleString()
}

export function When({ value }: { value: string | number | null | undefined }) {
  if (value === null || value === undefined) return <Text span>never</Text>
  const iso = new Date(typeof value === 'number' ? value : Date.parse(value)).toISOString()
  return (
    <time dateTime={iso} title={iso}>
      {ago(value)}
    </time>
  )
}

/** A mesh or peer by name, its did below: the first cell of every mesh row. */
export function NameAndDid({ name, did }: { name: ReactNode; did: string }) {
  return (
    <>
      <Text fw={600}>{name}</Text>
      <ShortDid did={did} />
    </>
  )
}

/**
 * How a signed act ended: its refusal (dismissable), or once `done` and not refused, a short
 * confirmation announced to screen readers (role=status).
 */
export function ActOutcome({
  action,
  refused,
  done,
  testId,
  children,
}: {
  action: { error: ApiError | undefined; clear: () => void }
  refused: string
  done: boolean
  testId: string
  children: ReactNode
}) {
  return (
    <>
      {action.error !== undefined && (
        <ErrorState error={action.error} title={refused} onClose={action.clear} />
      )}
      {done && action.error === undefined && (
        <Text size="sm" c="green" role="status" data-testid={testId}>
          {children}
        </Text>
      )}
    </>
  )
}
