import { Authority, DidResolver, InteractionReporter } from '../auth/index.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import type { NodeWiring } from './parts.ts'

/**
 * The authority on the current mesh key (its root delegation to the architect, the
 * architect's membership credential, trust), the reporter that feeds reputation, and
 * the periodic prune of spent invocations.
 */
export async function startAuthority(wiring: NodeWiring): Promise<void> {
  const { parts, init, logger } = wiring
  // Held by name: a key rotation replaces the authority.
  await parts.add('authority', createAuthority(wiring, parts.get('key')))
  await parts.add(
    'interactions',
    new InteractionReporter({
      trust: () => parts.get('authority').trust,
      logger,
      ...(init.authority?.interactionFlushMs !== undefined
        ? { flushIntervalMs: init.authority.interactionFlushMs }
        : {}),
    }),
  )
  const prune = setInterval(() => {
    parts
      .find('authority')
      ?.prune()
      .catch((err: unknown) => {
        logger.error({ event: 'authority.prune_failed', err }, 'pruning spent invocations failed')
      })
  }, init.authority?.pruneIntervalMs ?? 600_000)
  prune.unref()
  parts.onStop(() => clearInterval(prune))
}

/** The authority follows a key rotation: a root delegation and the architect's credential from the new key. */
export async function replaceAuthority(wiring: NodeWiring, key: Ed25519KeyPair): Promise<void> {
  const { parts } = wiring
  const next = createAuthority(wiring, key)
  await next.start()
  const previous = parts.find('authority')
  parts.set('authority', next)
  await previous?.stop()
}

function createAuthority({ parts, init, logger }: NodeWiring, key: Ed25519KeyPair): Authority {
  const settings = init.authority ?? {}
  const info = parts.get('info')
  return new Authority({
    store: parts.get('store'),
    audit: parts.get('audit'),
    meshKey: key,
    meshName: info.name,
    architectDid: info.architectDid,
    ...(settings.didWeb !== undefined ? { resolver: new DidResolver(settings.didWeb) } : {}),
    trust: {
      logger,
      ...(settings.violationThreshold !== undefined
        ? { violationThreshold: settings.violationThreshold }
        : {}),
      ...(settings.violationWindowMs !== undefined ? { violationWindowMs: settings.violationWindowMs } : {}),
    },
  })
}
