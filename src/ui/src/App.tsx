import { AppShell, Box, Burger, Button, Group, NavLink, Stack, Text, Title } from '@mantine/core'
import { useDisclosure } from '@mantine/hooks'
import type { MouseEvent } from 'react'
import { ConnectionsPanel } from './components/ConnectionsPanel.tsx'
import { Loading, ShortDid } from './components/common.tsx'
// accountability across meshes (SPEC §11)
import { DefectionAlert } from './components/DefectionAlert.tsx'
import { FederationMap } from './components/FederationMap.tsx'
// coordination fees (SPEC §10)
import { LedgerPanel } from './components/Ledger.tsx'
import { MembersView } from './components/Members.tsx'
import { RoomsView } from './components/Rooms.tsx'
import { SignIn } from './components/SignIn.tsx'
import { TrustAudit } from './components/TrustAudit.tsx'
import { navigate, usePath } from './lib/hooks.ts'
import { useSession, useSessionState } from './lib/session.tsx'
import { useTrafficSampler } from './lib/traffic.ts'

const SECTIONS = [
  { path: '/connections', label: 'Connections', view: ConnectionsPanel },
  { path: '/rooms', label: 'Rooms', view: RoomsView },
  { path: '/members', label: 'Members', view: MembersView },
  { path: '/trust', label: 'Trust and audit', view: TrustAudit },
  { path: '/federation', label: 'Federation', view: FederationMap },
  // coordination fees (SPEC §10)
  { path: '/ledger', label: 'Ledger', view: LedgerPanel },
] as const

export function App() {
  const { state, session } = useSessionState()
  useTrafficSampler(session)
  if (state.kind === 'loading') return <Loading label="Opening the console…" />
  if (state.kind === 'signed-out') return <SignIn />
  return <Shell />
}

function Shell() {
  const session = useSession()
  const path = usePath()
  const [opened, { toggle, close }] = useDisclosure()
  const section = SECTIONS.find((s) => path === s.path || path.startsWith(`${s.path}/`)) ?? SECTIONS[0]
  const View = section.view
  const go = (to: string) => (e: MouseEvent) => {
    e.preventDefault()
    close()
    navigate(to)
  }
  return (
    <AppShell
      header={{ height: 56 }}
      navbar={{ width: 220, breakpoint: 'sm', collapsed: { mobile: !opened } }}
      padding="md"
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger
              opened={opened}
              onClick={toggle}
              hiddenFrom="sm"
              size="sm"
              aria-label="Toggle navigation"
            />
            <Title order={1} size="h4" data-testid="mesh-name">
              {session.meshName}
            </Title>
            {/* At phone width the header keeps the name and the buttons (issue 14: 390 px). */}
            <Box visibleFrom="sm">
              <ShortDid did={session.health.did} />
            </Box>
          </Group>
          <Group gap="sm" wrap="nowrap">
            <Text size="sm" data-testid="signed-in-as" visibleFrom="sm">
              {session.key.name} · {session.me.role}
            </Text>
            <Button size="xs" variant="default" onClick={() => void session.signOut()}>
              Sign out
            </Button>
            <Button
              size="xs"
              variant="subtle"
              color="red"
              onClick={() => void session.signOut({ forget: true })}
            >
              Forget key
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" component="nav" aria-label="Console sections">
        <Stack gap={2}>
          {SECTIONS.map((s) => (
            <NavLink
              key={s.path}
              href={s.path}
              label={s.label}
              active={s === section}
              onClick={go(s.path)}
              aria-current={s === section ? 'page' : undefined}
            />
          ))}
        </Stack>
      </AppShell.Navbar>
      <AppShell.Main>
        {/* accountability across meshes (SPEC §11) */}
        <DefectionAlert />
        <View />
      </AppShell.Main>
    </AppShell>
  )
}
