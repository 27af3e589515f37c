import type { MeshUrlView } from '../../api/index.ts'
import { dialableAddresses, fetchManifest } from '../../manifest/index.ts'

/**
 * Reachable by URL (SPEC §10): what the manifest at `url` says of its mesh, once fetched
 * within bounds and verified (manifest/fetch-manifest.ts): `mesh connect <url>` learns
 * the did its act must name from it, the console shows it.
 */
export async function meshUrlView(url: string): Promise<MeshUrlView> {
  const { manifest, url: manifestUrl } = await fetchManifest(url)
  const agents = Array.isArray(manifest.agents) ? manifest.agents : []
  return {
    did: manifest.did,
    name: manifest.name,
    manifestUrl,
    ...(typeof manifest.endpoints.http === 'string' ? { http: manifest.endpoints.http } : {}),
    ...(typeof manifest.description === 'string' ? { description: manifest.description } : {}),
    multiaddrs: dialableAddresses(manifest),
    agents: agents.slice(0, 32).map((a) => ({
      name: String(a.name),
      skills: (Array.isArray(a.skills) ? a.skills : []).slice(0, 32).map((s) => String(s.name ?? s.id)),
    })),
    capabilities: (Array.isArray(manifest.capabilities) ? manifest.capabilities : [])
      .slice(0, 64)
      .map(String),
  }
}
