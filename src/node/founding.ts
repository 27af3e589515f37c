import { join } from 'node:path'
import { AgentService, echoAgent, summarizerAgent } from '../agents/index.ts'
import { AuditLog, CHECKPOINT_FILE } from '../audit/index.ts'
import { Authority, MemberBook } from '../auth/index.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import type { MeshInfo } from '../mesh-info.ts'
import type { MeshStore } from '../store/index.ts'
import { agentMember } from './agents.ts'

export interface FoundingInit {
  /** The new mesh's store, open. */
  store: MeshStore
  /** Where the mesh is being created (its audit checkpoint goes there, as the node keeps it). */
  dataDir: string
  /** The new mesh key (the first of its history: its identity). */
  key: Ed25519KeyPair
  info: MeshInfo
}

/**
 * Issue 15 (cold start): what a first start used to issue, issued by `mesh init` — the
 * mesh's root delegation to its architect, the architect's tier-1 membership credential,
 * the built-in agents' keys and their tier-3 membership credentials and member records,
 * with their audit rows and the audit checkpoint — so that a node's first start is like
 * any later one (it loads neither ucanto nor did-jwt-vc to issue them). The same
 * authority, audit log and agent service the node starts (src/node/authority.ts,
 * audit.ts, agents.ts), in the same order, on defaults: nothing a start is given changes
 * what they issue. A start on a data dir an older init made (without them) still issues
 * them (Authority.start, AgentService.start).
 */
export async function issueFounding({ store, dataDir, key, info }: FoundingInit): Promise<void> {
  const audit = new AuditLog({
    store,
    key,
    knownKeys: () => [key.did],
    mesh: key.did,
    checkpointFile: join(dataDir, CHECKPOINT_FILE),
  })
  await audit.start()
  try {
    const authority = new Authority({
      store,
      audit,
      meshKey: key,
      meshName: info.name,
      architectDid: info.architectDid,
    })
    await authority.start()
    const members = new MemberBook({
      store,
      architectDid: info.architectDid,
      ...(info.architectKeyName !== undefined ? { architectKeyName: info.architectKeyName } : {}),
      createdAt: info.createdAt,
      tierOf: (did) => authority.trust.tierOf(did),
    })
    // Only the agents' ids and names are read here; the summarizer reads no room at init.
    const noRooms = { lastMessages: () => Promise.reject(new Error('no rooms at mesh init')) }
    await new AgentService({
      store,
      audit,
      authority: () => authority,
      agents: [echoAgent(), summarizerAgent(noRooms)],
      enroll: (agent) => members.enroll(agentMember(agent, key.did)),
    }).start()
    await authority.stop()
  } finally {
    await audit.stop()
  }
}
