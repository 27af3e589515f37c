import { AgentService, echoAgent, summarizerAgent } from '../agents/index.ts'
import type { RoomManager } from '../rooms/index.ts'
import type { NodeWiring } from './parts.ts'
import type { ReputationFeed } from './reputation.ts'

export interface AgentsWiring extends NodeWiring {
  reputation: ReputationFeed
}

/** This mesh's agents (echo, and a room summarizer reading as its own did), enrolled as members. */
export async function startAgents(wiring: AgentsWiring): Promise<void> {
  const { parts } = wiring
  const members = parts.get('members')
  const agents = new AgentService({
    store: parts.get('store'),
    audit: parts.get('audit'),
    authority: () => parts.get('authority'),
    agents: [echoAgent(), summarizerAgent({ lastMessages: lastMessagesOf(parts.get('rooms')) })],
    invokeUrl: () => {
      const httpUrl = wiring.init.publicUrl ?? parts.find('httpUrl') // issue 14: the public URL
      return httpUrl === undefined ? undefined : `${httpUrl}/api/invoke`
    },
    enroll: async (agent) => members.enroll(agentMember(agent, parts.get('key').did)),
    onInteraction: wiring.reputation.local,
    logger: wiring.logger,
  })
  await agents.start()
  // Held, not stopped: an agent service has nothing running of its own.
  parts.set('agents', agents)
}

/** The last `count` messages of a room as `asDid` reads them, paging through the whole room. */
function lastMessagesOf(rooms: RoomManager) {
  return async (roomId: string, asDid: string, count: number) => {
    const all = []
    let after: string | undefined
    do {
      const page = await rooms.messages(roomId, asDid, { limit: 200, ...(after ? { after } : {}) })
      all.push(...page.messages)
      if (all.length > 4 * count) all.splice(0, all.length - count)
      after = page.nextCursor ?? undefined
    } while (after !== undefined)
    return all.slice(-count)
  }
}

// issue 15 (cold start): the member record an agent gets, here and at `mesh init` (founding.ts)
export function agentMember(agent: { did: string; name: string }, enrolledBy: string) {
  return {
    did: agent.did,
    kind: 'agent' as const,
    role: 'agent',
    tier: 3 as const,
    name: agent.name,
    enrolledBy,
  }
}
