import { Button, Card, Group, Stack, Text, Title } from '@mantine/core'
import type { ReactNode } from 'react'
import type { ApiError } from '../lib/api.ts'
import { ActOutcome } from './common.tsx'

/**
 * A signed act's form in a card: its fields, a note on what the key signs and the submit
 * button (sent only when `ready`), then how the act ended (`ActOutcome`).
 */
export function ActForm({
  title,
  ready,
  action,
  note,
  submit,
  refused,
  done,
  testId,
  outcome,
  children,
}: {
  title: string
  ready: boolean
  action: { run: () => Promise<unknown>; busy: boolean; error: ApiError | undefined; clear: () => void }
  /** What the key signs, beside the button. */
  note: ReactNode
  /** The submit button's label. */
  submit: string
  /** The refusal's title. */
  refused: string
  done: boolean
  /** The confirmation's test id. */
  testId: string
  /** The confirmation once `done`. */
  outcome: ReactNode
  /** The fields. */
  children: ReactNode
}) {
  return (
    <Card withBorder>
      <Title order={3} size="h5" mb="xs">
        {title}
      </Title>
      <form
        onSubmit={(e) => {
          e.preventDefault()
          if (ready) void action.run()
        }}
      >
        <Stack gap="xs">
          {children}
          <Group justify="space-between">
            <Text size="xs" c="dimmed">
              {note}
            </Text>
            <Button type="submit" disabled={!ready} loading={action.busy}>
              {submit}
            </Button>
          </Group>
        </Stack>
      </form>
      <ActOutcome action={action} refused={refused} done={done} testId={testId}>
        {outcome}
      </ActOutcome>
    </Card>
  )
}
