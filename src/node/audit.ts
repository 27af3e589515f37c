import { join } from 'node:path'
import { AuditLog, CHECKPOINT_FILE } from '../audit/index.ts'
import type { NodeWiring } from './parts.ts'

/** The audit log, signing with the current key. */
export async function startAudit({ parts, init, logger }: NodeWiring): Promise<void> {
  const history = parts.get('history')
  // Every key the mesh has held verifies its rows, also after a restart on a later key.
  const audit = new AuditLog({
    store: parts.get('store'),
    key: parts.get('key'),
    logger,
    knownKeys: () => parts.find('history')?.keys ?? [],
    mesh: history.identity,
    // Beside the store, not in it: a store restored from an older copy does not bring
    // an older checkpoint with it.
    checkpointFile: join(init.dataDir, CHECKPOINT_FILE),
  })
  await parts.add('audit', audit)
}
