import { ScrollArea, Table, type TableProps, VisuallyHidden } from '@mantine/core'
import type { ReactNode } from 'react'

/** A column heading; `{ hidden }` is read to screen readers only (a column of buttons). */
export type Column = string | { hidden: string }

/**
 * A table with its headings given as data and its rows as children; `scroll` wraps it in a
 * ScrollArea (`{ h }` for a fixed height). The rest goes to Mantine's Table (aria-label, striped…).
 */
export function DataTable({
  columns,
  scroll,
  children,
  ...table
}: TableProps & { columns: Column[]; scroll?: true | { h: number }; children: ReactNode }) {
  const content = (
    <Table {...table}>
      <Table.Thead>
        <Table.Tr>
          {columns.map((c) =>
            typeof c === 'string' ? (
              <Table.Th key={c}>{c}</Table.Th>
            ) : (
              <Table.Th key={c.hidden}>
                <VisuallyHidden>{c.hidden}</VisuallyHidden>
              </Table.Th>
            ),
          )}
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>{children}</Table.Tbody>
    </Table>
  )
  if (scroll === undefined) return content
  return scroll === true ? (
    <ScrollArea>{content}</ScrollArea>
  ) : (
    <ScrollArea h={scroll.h}>{content}</ScrollArea>
  )
}
