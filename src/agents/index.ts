/**
 * Agents: this mesh's own agents, listed in the manifest with A2A Agent Card fields
 * (their skills are the capabilities other meshes may invoke), and `POST /api/invoke`,
 * where an `agent/invoke` invocation with a human-signed chain runs one of them.
 */
export { type AgentSkill, agentCard, type LocalAgent, type SkillContext } from './agent.ts'
export {
  AgentService,
  type AgentServiceInit,
  type InvokeRequest,
  type InvokeResult,
} from './agent-service.ts'
export { echoAgent, type RoomReader, summarize, summarizerAgent } from './builtin-agents.ts'
// one invocation dispatcher (POST /api/invoke and /mesh/invoke/1.0.0)
export { type InvocationHandler, Invocations, type InvocationsInit } from './invocations.ts'
