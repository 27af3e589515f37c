import { join } from 'node:path'
import type { MeshNodeInit } from '../../src/config.ts'
import { type Ed25519KeyPair, HumanKeystore } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { initMesh, STORE_DIR } from '../../src/mesh-info.ts'
import { createMeshNode, type MeshNode } from '../../src/mesh-node.ts'
import { MeshStore } from '../../src/store/index.ts'

/** HTTP rate limits far above any benchmark's traffic. */
export const NO_RATE_LIMITS = {
  signIn: { max: 1_000_000_000, windowMs: 1_000 },
  invoke: { max: 1_000_000_000, windowMs: 1_000 },
  anonymous: { max: 1_000_000_000, windowMs: 1_000 },
  session: { max: 1_000_000_000, windowMs: 1_000 },
}

/**
 * A new mesh `alpha` under `root` (its keystore in `root/keys`), started in this process:
 * HTTP on a free loopback port without rate limits, silent, discovery all but idle;
 * `init` adds to that. The caller stops it.
 */
export async function startInProcessMesh(
  root: string,
  init: Partial<MeshNodeInit> = {},
): Promise<{ node: MeshNode; architect: Ed25519KeyPair }> {
  const keystore = new HumanKeystore(join(root, 'keys'))
  const dataDir = join(root, 'alpha')
  const store = new MeshStore({ path: join(dataDir, STORE_DIR) })
  await store.open()
  await initMesh({ store, dataDir, name: 'alpha', keystore })
  await store.close()
  const node = createMeshNode({
    dataDir,
    http: { host: '127.0.0.1', port: 0, rateLimits: NO_RATE_LIMITS },
    logger: silentLogger(),
    discovery: { intervalMs: 600_000 },
    ...init,
  })
  await node.start()
  return { node, architect: await keystore.load('alpha-architect') }
}
