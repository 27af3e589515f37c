import type { Registry } from 'prom-client'
import { CheckpointGossip } from '../audit/index.ts'
import { ActGate } from '../auth/index.ts'
import {
  CONNECT_PROTOCOLS,
  ConnectionService,
  EnvelopeVerifier,
  type FederationPolicy,
  HttpPeerBook, // phase-1 HTTP federation (SPEC §12)
  HttpRoute,
  PeerBook,
  PolicyService,
  RejectedLog,
} from '../connections/index.ts'
import type { FederationSettings } from '../manifest/index.ts'
import type { NodeWiring } from './parts.ts'
import type { ReputationFeed } from './reputation.ts'

/** The federation settings a policy puts in force, as the manifest and room sync see them. */
export function federationSettings(policy: FederationPolicy): FederationSettings {
  const { mode, autoAccept, maxForeignParticipantsPerRoom, maxBackfillEventsPerRequest } = policy
  return { mode, autoAccept, maxForeignParticipantsPerRoom, maxBackfillEventsPerRequest }
}

// Audit rows are bounded (8 KiB): long allow/deny lists are recorded by size.
export function policySummary(policy: FederationPolicy): Record<string, unknown> {
  const list = (dids: string[]) => (dids.length <= 20 ? dids : { count: dids.length })
  return {
    ...federationSettings(policy),
    // history limit (issue 13): not in the manifest, but audited
    backfillLimit: policy.backfillLimit,
    allow: list(policy.allow),
    deny: list(policy.deny),
  }
}

export interface ConnectionsWiring extends NodeWiring {
  metrics: Registry
  reputation: ReputationFeed
  multiaddrs: () => string[]
  protocolVersions: () => string[]
}

/** Policy, rejected log, verifiers and act gate → the connection service (wire handler and outbox). */
export async function startConnections(wiring: ConnectionsWiring): Promise<void> {
  const { parts, init, logger: log } = wiring
  const store = parts.get('store')
  const info = parts.get('info')
  const audit = parts.get('audit')
  const peerBook = parts.set('peerBook', new PeerBook(store))
  const policy = parts.set('policy', new PolicyService({ store }))
  parts.set('federation', federationSettings(await policy.get()))
  const rejected = parts.set(
    'rejected',
    new RejectedLog({
      store,
      logger: log.child({ area: 'federation' }),
      metrics: wiring.metrics,
    }),
  )
  const envelopes = new EnvelopeVerifier({
    store,
    selfDid: () => parts.get('key').did,
    protocols: CONNECT_PROTOCOLS,
    logger: log,
  })
  envelopes.start()
  parts.onStop(() => envelopes.stop())

  const settings = init.connections ?? {}
  // phase-1 HTTP federation (SPEC §12): where peers take POSTs, and the outbox's fallback to them
  // …and a peer reached by URL (SPEC §10) brings its HTTP base in its peer record
  const httpPeers = new HttpPeerBook(store, Date.now, async (did) => {
    const peer = (await peerBook.get(did)) ?? (await peerBook.get((await peerBook.identityOf(did)) ?? did))
    return peer?.http
  })
  const httpRoute = new HttpRoute({
    peers: httpPeers,
    logger: log.child({ area: 'federation' }),
    ...(settings.sendTimeoutMs !== undefined ? { timeoutMs: settings.sendTimeoutMs } : {}),
    ...(settings.httpFallback?.failuresBeforeHttp !== undefined
      ? { failuresBeforeHttp: settings.httpFallback.failuresBeforeHttp }
      : {}),
    ...(settings.httpFallback?.libp2pRetryMs !== undefined
      ? { libp2pRetryMs: settings.httpFallback.libp2pRetryMs }
      : {}),
  })
  // every act is a chain (the interim act format and its flag are gone)
  const gate = parts.set('gate', new ActGate({ authority: () => parts.get('authority') }))
  // The one running now: a key rotation replaces discovery with the host.
  const first = parts.get('discovery')
  const discovery = () => parts.find('discovery') ?? first
  const connections = new ConnectionService(
    {
      // Getters: a key rotation restarts the service on a new host and key.
      get libp2p() {
        return parts.get('libp2p')
      },
      key: () => parts.get('key'),
      store,
      audit,
      policy,
      rejected,
      envelopes,
      acts: gate,
      onInteraction: wiring.reputation.peer,
      // paused links (issue 13): room links follow a pause or resume at once
      onPauseChange: () => parts.find('roomSync')?.recheckPeers(),
      peers: peerBook,
      checkpoints: new CheckpointGossip({ audit, logger: log }),
      logger: log,
      resolvePeer: async (did, options) => {
        const record =
          (await discovery().get(did, options)) ??
          (
            await discovery()
              .lookup(did, { ...options, first: true })
              .catch(() => undefined)
          )?.record
        return record === undefined ? undefined : { multiaddrs: record.multiaddrs }
      },
      fetchRotations: async (did, options) => {
        const { record } = await discovery().lookup(did, options)
        if (record.identity === undefined || record.rotations === undefined) return undefined
        return { identity: record.identity, rotations: record.rotations, multiaddrs: record.multiaddrs }
      },
      // revocation that travels (SPEC §9): started after the connections
      revocations: () => parts.find('revocations'),
      httpRoute, // phase-1 HTTP federation (SPEC §12)
      // store and forward (SPEC §10): started after the connections
      mailbox: () => parts.find('mailbox'),
    },
    {
      name: info.name,
      architectDid: info.architectDid,
      multiaddrs: wiring.multiaddrs,
      ownDids: () => parts.get('history').keys,
      protocolVersions: wiring.protocolVersions,
      // phase-1 HTTP federation (SPEC §12): what others reach, sent in requests
      httpUrl: () => init.publicUrl ?? parts.find('httpUrl'),
      outbox: {
        ...(settings.retryBaseMs !== undefined ? { baseDelayMs: settings.retryBaseMs } : {}),
        ...(settings.retryMaxMs !== undefined ? { maxDelayMs: settings.retryMaxMs } : {}),
      },
      ...(settings.sendTimeoutMs !== undefined ? { sendTimeoutMs: settings.sendTimeoutMs } : {}),
      ...(settings.probeIntervalMs !== undefined ? { probeIntervalMs: settings.probeIntervalMs } : {}),
      ...(settings.rateLimit !== undefined ? { rateLimit: settings.rateLimit } : {}),
      ...(settings.maxPendingInboundPerPeer !== undefined
        ? { maxPendingInboundPerPeer: settings.maxPendingInboundPerPeer }
        : {}),
    },
  )
  await parts.add('connections', connections)
  // phase-1 HTTP federation (SPEC §12): node/http-federation.ts builds the HTTP face on these
  parts.set('httpPeers', httpPeers)
  parts.set('httpRoute', httpRoute)
}
