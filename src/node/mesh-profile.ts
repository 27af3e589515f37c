import type { AgentCard } from '../manifest/index.ts'
import { MESH_PROFILE_LIMITS as L, type MeshProfile } from '../p2p/index.ts'
import { invocableNow } from './invocable.ts'

/**
 * Reachable by URL (SPEC §10): what this mesh's DHT record and registry heartbeat say of
 * it beyond its addresses — its HTTP base (`--public-url`, else the address it listens
 * on), its manifest's URL, its description, its agents `[{name, skills}]` and the
 * capabilities its manifest offers — cut to the bounds a record must keep to.
 */
export function meshProfile(input: {
  http: string | undefined
  description?: string
  agents: AgentCard[]
}): MeshProfile {
  const http = input.http?.replace(/\/+$/, '') ?? ''
  const manifestUrl = http === '' ? '' : `${http}/.well-known/mesh-manifest.json`
  const cut = (text: string, max: number) =>
    Array.from(text, (c) => (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f ? ' ' : c))
      .join('')
      .slice(0, max)
  const names = (items: string[], count: number, max: number) =>
    items
      .map((s) => cut(s, max))
      .filter((s) => s.length > 0)
      .slice(0, count)
  return {
    ...(http !== '' && http.length <= L.urlMaxLength ? { http } : {}),
    ...(manifestUrl !== '' && manifestUrl.length <= L.urlMaxLength ? { manifestUrl } : {}),
    ...(input.description !== undefined && input.description !== ''
      ? { description: cut(input.description, L.descriptionMaxLength) }
      : {}),
    agents: input.agents
      .filter((a) => cut(a.name, L.agentNameMaxLength).length > 0)
      .slice(0, L.maxAgents)
      .map((a) => ({
        name: cut(a.name, L.agentNameMaxLength),
        skills: names(
          a.skills.map((s) => s.name || s.id),
          L.maxSkills,
          L.skillMaxLength,
        ),
      })),
    capabilities: names(
      invocableNow({ agents: input.agents }).capabilities,
      L.maxCapabilities,
      L.capabilityMaxLength,
    ),
  }
}
