import { BadRequestError } from '../errors.ts'
import type { MessageView } from '../rooms/index.ts'
import type { LocalAgent } from './agent.ts'

/** `echo`: answers with what it was given — the smallest capability another mesh can invoke. */
export function echoAgent(): LocalAgent {
  return {
    id: 'echo',
    name: 'echo',
    description: 'Answers with its input; for checking that a cross-mesh chain works.',
    version: '1.0.0',
    skills: [
      {
        id: 'echo',
        name: 'Echo',
        description: 'Returns {echo: input, invoker, at}.',
        tags: ['diagnostics'],
        examples: ['{"text":"hello"}'],
        run: async (input, context) => {
          const size = JSON.stringify(input ?? null).length
          if (size > 8192) throw new BadRequestError('echo input is at most 8 KiB of JSON', { size })
          return { echo: input ?? null, invoker: context.invoker, at: new Date().toISOString() }
        },
      },
    ],
  }
}

export interface RoomReader {
  /** The room's messages readable by `asDid`, oldest first (throws MESH_FORBIDDEN / NOT_FOUND). */
  lastMessages(roomId: string, asDid: string, count: number): Promise<MessageView[]>
}

const STOP_WORDS = new Set(
  'a an and are as at be but by for from has have i in is it its me my not of on or our so that the this to was we were what when which who will with you your'.split(
    ' ',
  ),
)

/**
 * `summarizer` with skill `room-summary` {room, last?: 1–200 (default 50)}: an
 * extractive summary of the last messages of a room the agent itself may read (it reads
 * as its own did: the architect decides which rooms by adding it to them) — who spoke
 * how much, the span, the most frequent words, the first and last lines.
 */
export function summarizerAgent(rooms: RoomReader): LocalAgent {
  return {
    id: 'summarizer',
    name: 'summarizer',
    description: 'Summarises the last messages of a room it has been added to.',
    version: '1.0.0',
    skills: [
      {
        id: 'room-summary',
        name: 'Room summary',
        description: 'Input {room, last?}: who spoke, when, the main words, first and last lines.',
        tags: ['rooms', 'summary'],
        examples: ['{"room":"<room id>","last":50}'],
        run: async (input, context) => {
          const { room, last } = (input ?? {}) as { room?: unknown; last?: unknown }
          if (typeof room !== 'string' || !/^[A-Za-z0-9._~-]{1,128}$/.test(room)) {
            throw new BadRequestError('room-summary needs {room: <room id>}')
          }
          const count = last === undefined ? 50 : last
          if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 200) {
            throw new BadRequestError('last is an integer 1–200')
          }
          const messages = (await rooms.lastMessages(room, context.agentDid, count)).filter(
            (m) => !m.redacted,
          )
          return summarize(room, messages)
        },
      },
    ],
  }
}

export function summarize(room: string, messages: MessageView[]) {
  const authors = new Map<string, number>()
  const words = new Map<string, number>()
  for (const m of messages) {
    authors.set(m.author, (authors.get(m.author) ?? 0) + 1)
    for (const word of m.body.toLowerCase().match(/[\p{L}\p{N}'-]{3,}/gu) ?? []) {
      if (!STOP_WORDS.has(word)) words.set(word, (words.get(word) ?? 0) + 1)
    }
  }
  const top = <K>(map: Map<K, number>, n: number) =>
    [...map.entries()].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0]))).slice(0, n)
  const first = messages[0]
  const latest = messages.at(-1)
  const line = (m: MessageView | undefined) =>
    m === undefined ? null : { author: m.author, body: m.body.slice(0, 280), ts: m.ts }
  const speakers = top(authors, 10).map(([author, count]) => ({ author, messages: count }))
  const keywords = top(words, 8).map(([word]) => word)
  return {
    room,
    messages: messages.length,
    from: first === undefined ? null : new Date(first.ts).toISOString(),
    to: latest === undefined ? null : new Date(latest.ts).toISOString(),
    speakers,
    keywords,
    first: line(first),
    last: line(latest),
    text:
      messages.length === 0
        ? 'No messages.'
        : `${messages.length} messages by ${authors.size} author(s)` +
          `${speakers[0] !== undefined ? `, mostly ${speakers[0].author}` : ''}` +
          `${keywords.length > 0 ? `; about ${keywords.slice(0, 5).join(', ')}` : ''}.`,
  }
}
