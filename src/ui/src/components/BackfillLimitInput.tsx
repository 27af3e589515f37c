import { Group, NumberInput, SegmentedControl, Stack, Text } from '@mantine/core'
import { useState } from 'react'
import { type BackfillChoice, backfillChoiceOf, backfillLimitOf, backfillText } from '../lib/lifecycle.ts'

/**
 * The policy's history limit (`backfillLimit`, SPEC §9): how much of a room's history a
 * peer that newly shares it gets — all of it, the last N entries, or none (only messages
 * written after the share). Separate from the chunk size of a backfill request.
 */
export function BackfillLimitInput({
  value,
  onChange,
  disabled,
}: {
  value: number | null
  onChange: (limit: number | null) => void
  disabled?: boolean
}) {
  const choice = backfillChoiceOf(value)
  // The count typed for "last N", kept while another choice is selected.
  const [count, setCount] = useState(choice === 'last' && value !== null ? value : 100)
  const pick = (next: BackfillChoice) => onChange(backfillLimitOf(next, count))
  return (
    <Stack gap={4} data-testid="backfill-limit" data-limit={value === null ? 'all' : String(value)}>
      <Text size="sm" fw={500} id="backfill-limit-label">
        History a newly sharing peer gets
      </Text>
      <Group gap="sm" align="center" wrap="wrap">
        <SegmentedControl
          aria-labelledby="backfill-limit-label"
          value={choice}
          onChange={(v) => pick(v as BackfillChoice)}
          data={[
            { value: 'all', label: 'All' },
            { value: 'last', label: 'Last N' },
            { value: 'none', label: 'Only new' },
          ]}
          disabled={disabled}
        />
        {choice === 'last' && (
          <NumberInput
            aria-label="Entries of history, at most"
            data-testid="backfill-count"
            min={1}
            max={100_000}
            allowDecimal={false}
            allowNegative={false}
            w={140}
            value={count}
            onChange={(v) => {
              const n = typeof v === 'number' ? v : Number.parseInt(v, 10)
              if (!Number.isFinite(n)) return
              setCount(n)
              onChange(backfillLimitOf('last', n))
            }}
            disabled={disabled}
          />
        )}
      </Group>
      <Text size="xs" c="dimmed">
        A peer that starts sharing a room gets {backfillText(value)}; what it does not get shows as a gap.
        Rooms already shared keep what they have.
      </Text>
    </Stack>
  )
}
