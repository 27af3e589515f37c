import type { AgentCard } from '../manifest/index.ts'

/** What a skill is run with: who asked (verified) and the agent's own identity. */
export interface SkillContext {
  /** The invoker's did (its signature and chain verified). */
  invoker: string
  /** The invoker's tier on this mesh. */
  tier: number
  /** The agent's own did (the principal it reads rooms as). */
  agentDid: string
  signal: AbortSignal
}

/** One capability of an agent, as listed in its card's `skills` (`id` = the ability invoked). */
export interface AgentSkill {
  id: string
  name: string
  description: string
  tags?: string[]
  examples?: string[]
  /** Runs the skill; throws a MeshError on bad input. The result is JSON. */
  run(input: unknown, context: SkillContext): Promise<unknown>
}

/** A local agent: an id (its resource is `<mesh did>/agents/<id>`), an A2A card, and skills. */
export interface LocalAgent {
  id: string
  name: string
  description: string
  version: string
  skills: AgentSkill[]
}

/** The agent's A2A card, as the manifest lists it. */
export function agentCard(agent: LocalAgent, did: string, url: string | undefined): AgentCard {
  return {
    did,
    name: agent.name,
    description: agent.description,
    ...(url !== undefined ? { url } : {}),
    version: agent.version,
    capabilities: { streaming: false, pushNotifications: false, stateTransitionHistory: false },
    defaultInputModes: ['application/json'],
    defaultOutputModes: ['application/json'],
    skills: agent.skills.map((s) => ({
      id: s.id,
      name: s.name,
      description: s.description,
      ...(s.tags !== undefined ? { tags: s.tags } : {}),
      ...(s.examples !== undefined ? { examples: s.examples } : {}),
    })),
  }
}
