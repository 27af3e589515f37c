import { Alert, Code, List, Text } from '@mantine/core'
import { usePoll } from '../lib/hooks.ts'
import { useSession } from '../lib/session.tsx'
import { ShortDid, When } from './common.tsx'

/**
 * The console's alert for meshes caught equivocating (SPEC §11): each signed two audit
 * logs that no consistency proof joins. The node has put each on the federation policy's
 * deny list at tier 4; the proof is at `GET /api/federation/defections/:did`
 * (`mesh audit proof <did>`, checked offline with `mesh audit check`). Shown on every
 * screen while there is one; nothing while there is none or the node does not serve it.
 */
export function DefectionAlert() {
  const session = useSession()
  const defections = usePoll(() => session.call('listDefections'), 5000, [session])
  const list = defections.data?.defections ?? []
  if (list.length === 0) return null
  return (
    <Alert
      color="red"
      title="A mesh showed different audit logs to different meshes"
      data-testid="defections"
      mb="md"
    >
      <List size="sm">
        {list.map((d) => (
          <List.Item key={d.mesh}>
            <ShortDid did={d.mesh} /> — heads of {d.proof.older.size} and {d.proof.newer.size} rows that no
            consistency proof joins;{' '}
            {d.source === 'found' ? 'found here' : `shown by ${d.source.slice(5, 25)}…`} <When value={d.at} />
          </List.Item>
        ))}
      </List>
      <Text size="xs" mt="xs">
        It is on the deny list at tier 4 until you decide. Export the proof with{' '}
        <Code>mesh audit proof &lt;did&gt;</Code>; anyone checks it with <Code>mesh audit check</Code>.
      </Text>
    </Alert>
  )
}
