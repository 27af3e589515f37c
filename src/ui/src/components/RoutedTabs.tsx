import { Tabs } from '@mantine/core'
import type { ReactNode } from 'react'
import { navigate, usePath } from '../lib/hooks.ts'

export interface RoutedTab {
  value: string
  label: ReactNode
  rightSection?: ReactNode
  panel: ReactNode
}

/**
 * Tabs whose choice lives in the path (`<base>/<tab>`), so a tab can be linked to and Back
 * returns to the last one; the first tab is the default. Only the open panel is mounted, so a
 * closed tab does not keep polling.
 */
export function RoutedTabs({ base, label, tabs }: { base: string; label: string; tabs: RoutedTab[] }) {
  const path = usePath()
  const open = tabs.find((t) => path === `${base}/${t.value}`)?.value ?? tabs[0]?.value
  return (
    <Tabs value={open} onChange={(v) => v !== null && navigate(`${base}/${v}`)} keepMounted={false}>
      <Tabs.List aria-label={label}>
        {tabs.map((t) => (
          <Tabs.Tab key={t.value} value={t.value} rightSection={t.rightSection}>
            {t.label}
          </Tabs.Tab>
        ))}
      </Tabs.List>
      {tabs.map((t) => (
        <Tabs.Panel key={t.value} value={t.value} pt="md">
          {t.panel}
        </Tabs.Panel>
      ))}
    </Tabs>
  )
}
