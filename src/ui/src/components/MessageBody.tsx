import { Text } from '@mantine/core'
import { splitMentions } from '../../../api/mentions.ts'

/**
 * A message body with its mentions set apart, read by the same parser the node notifies by
 * (src/api/mentions.ts): what is shown as a mention is what was one.
 */
export function MessageBody({ body }: { body: string }) {
  return (
    <>
      {splitMentions(body).map((part) =>
        typeof part === 'string' ? (
          part
        ) : (
          <Text
            key={part.start}
            span
            inherit
            fw={600}
            c="blue"
            data-testid="mention"
            data-mention={part.mesh === undefined ? part.name : `${part.name}:${part.mesh}`}
          >
            {body.slice(part.start, part.end)}
          </Text>
        ),
      )}
    </>
  )
}
