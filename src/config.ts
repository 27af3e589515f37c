// accountability across meshes (SPEC §11)
import type { AuditProtocolInit } from './connections/audit-protocol.ts'
// outbound invocation over libp2p
import type { InvokeProtocolInit } from './connections/invoke-protocol.ts'
import type { HttpConnectionLimits } from './http/index.ts'
import type { OriginGuardInit } from './http/origin-guard.ts'
import type { RateLimitsInit } from './http/rate-limits.ts'
// coordination fees (SPEC §10)
import type { RelayFeesInit } from './ledger/index.ts'
import type { Logger } from './log.ts'
// store and forward (SPEC §10)
import type { MailboxClientInit } from './mailbox/client.ts'
import type { MailboxRelayInit } from './mailbox/relay.ts'
// the model proxy (SPEC §13)
import type { QuotaOverrides } from './model/index.ts'
// reachability (SPEC §10)
import type { RelayServiceInit } from './p2p/reachability.ts'
import type { RecordGuardInit } from './p2p/record-datastore.ts'

/** The DHT store's quotas and validities a node can be given (see RecordGuardInit). */
export type DhtStoreLimits = Pick<
  RecordGuardInit,
  | 'maxRecords'
  | 'maxRecordBytes'
  | 'maxRecordsPerPeer'
  | 'maxRecordsPerNamespace'
  | 'maxOtherNamespaceRecords'
  | 'maxProviders'
  | 'maxProvidersPerPeer'
  | 'maxProvidersPerKey'
  | 'recordValidityMs'
  | 'providerValidityMs'
  | 'sweepIntervalMs'
>

import type { InboundLimits } from './rooms/room-sync.ts'

/** The software version reported in health, manifest, records and heartbeats. */
export const MESH_NODE_VERSION = '0.1.0'

/** What a served registry asks of meshes and holds; shared by `mesh start --serve-registry` and `mesh registry`. */
export interface RegistryLimits {
  /** Leading zero bits of the admission stamp a new did must bring (0 = none); default 20. */
  powBits?: number
  /** Meshes listed at most (a full registry evicts its least proven entry); default 10 000. */
  maxMeshes?: number
  /** Uptime after which a listed mesh is established (never evicted while live); default 10 heartbeat intervals. */
  establishedAfterMs?: number
  /** Heartbeats per source address per window; default 30 per heartbeat interval. */
  perSource?: { max?: number; windowMs?: number }
  /** Heartbeats per mesh: a token bucket; default burst 10, one back per half interval. */
  didRate?: { burst?: number; refillMs?: number }
  /** New meshes admitted per source address: a token bucket; default burst 8, one back per 10 intervals. */
  newPerSource?: { burst?: number; refillMs?: number; maxSources?: number }
}

/** Where an HTTP server (node or registry) listens, and which names and origins browsers may use. */
export interface HttpListenInit {
  host?: string
  port?: number
  /**
   * Host names it also answers to (a public name behind a reverse proxy); any other
   * name is refused with MESH_FORBIDDEN (DNS rebinding). IP literals, `localhost`,
   * `*.localhost` and `host` need no entry. Default none.
   */
  allowedHosts?: string[]
  /**
   * Origins whose pages may call the API and open the y-websocket besides the server's
   * own (`https://console.example.org`). Default none.
   */
  allowedOrigins?: string[]
  /**
   * Header/request/keep-alive/idle timeouts and connection caps, defaults 10 s, 30 s, 5 s,
   * 60 s, 512 open, 64 per remote address (http/connection-limits.ts).
   */
  connections?: HttpConnectionLimits
}

/** The Host/Origin checks an HTTP server's listen options ask for (default host 127.0.0.1). */
export function originGuardOf(http: HttpListenInit | undefined): OriginGuardInit {
  return {
    bindHost: http?.host ?? '127.0.0.1',
    allowedHosts: http?.allowedHosts ?? [],
    allowedOrigins: http?.allowedOrigins ?? [],
  }
}

/** Everything a node can be told at start. Only `dataDir` is required. */
export interface MeshNodeInit {
  /** The node's data dir: mesh key, LevelDB, the running node's address file. */
  dataDir: string
  /**
   * HTTP API and console; default 127.0.0.1:7700 (port 0 picks a free one).
   */
  http?: HttpListenInit & {
    /**
     * Per-source token buckets (429 MESH_RATE_LIMITED with Retry-After); `false` turns them
     * off. Defaults, each a burst refilled evenly over 60 s: sign-in 120 per IP, invoke 120
     * per IP, anonymous 3 000 per IP, session 6 000 per principal (src/http/rate-limits.ts).
     */
    rateLimits?: RateLimitsInit | false
  }
  /** libp2p listen multiaddrs; default ['/ip4/127.0.0.1/tcp/0']. */
  listen?: string[]
  /** A registry to bootstrap from (its public list) and, for a public mesh, to heartbeat to. */
  registryUrl?: string
  /** Multiaddrs (with /p2p/…) of meshes to join the DHT through. */
  bootstrap?: string[]
  /** Also serve a registry (heartbeats and public list) from this node; default false. */
  serveRegistry?: boolean
  /** Limits of the registry served with `serveRegistry` (registry/registry-service.ts, routes.ts). */
  registry?: RegistryLimits
  /** List this mesh: heartbeats to the registry and an entry in the DHT directory; default false. */
  public?: boolean
  store?: {
    /**
     * How often the store is probed (a write and read) and a durability mark written; a
     * failed probe makes /api/health answer 503 and reopens the store; default 5 000 ms.
     */
    probeIntervalMs?: number
  }
  discovery?: {
    /** How often to republish this mesh's record and look for new meshes; default 10 000 ms. */
    intervalMs?: number
  }
  /**
   * What this node keeps for the DHT (records and provider records of other meshes): the
   * quotas per peer, per namespace or CID and in total, and how long each lives. Defaults:
   * DHT_STORE_DEFAULTS in p2p/record-datastore.ts (20 000 records, 32 MiB, 64 per peer; 20 000
   * provider records, 64 per peer, 1 000 per CID; both 48 h; swept hourly).
   */
  dht?: DhtStoreLimits
  heartbeat?: {
    /** How often to heartbeat the registry; default 30 000 ms. A registry served here uses the same value. */
    intervalMs?: number
  }
  connections?: {
    /** First delay before re-sending an undelivered federation message; doubled per attempt; default 1 000 ms. */
    retryBaseMs?: number
    /** Cap on that delay (jitter keeps it between 50 % and 100 % of the value); default 60 000 ms. */
    retryMaxMs?: number
    /** One delivery attempt (dial + exchange) at most this long; default 10 000 ms. */
    sendTimeoutMs?: number
    /** How often accepted peers are pinged to show `degraded`; 0 = never; default 30 000 ms. */
    probeIntervalMs?: number
    /** Per-peer token bucket on the handshake protocol; default burst 20, refill 5/s. */
    rateLimit?: { capacity?: number; refillPerSecond?: number }
    /** Inbound pending requests kept per peer mesh; default 1. */
    maxPendingInboundPerPeer?: number
    // phase-1 HTTP federation (SPEC §12): when the outbox posts to a peer's HTTP endpoint instead
    httpFallback?: {
      failuresBeforeHttp?: number
      libp2pRetryMs?: number
      pollIntervalMs?: number
      /** Per-peer token bucket on room frames over HTTP; default burst 120, refill 40/s. */
      roomsRateLimit?: { capacity?: number; refillPerSecond?: number }
    }
  }
  rooms?: {
    /** How often links to peer meshes sharing rooms are checked, opened or closed; default 2 000 ms. */
    syncIntervalMs?: number
    /** One dial of a room link at most this long; default 10 000 ms. */
    dialTimeoutMs?: number
    /** Updates per room between snapshots of its log; default 500. */
    compactEvery?: number
    /**
     * Limits on inbound `/mesh/rooms` streams per peer key (concurrent, new per window,
     * reloads on demand for unknown keys); see `InboundLimits` in rooms/room-sync.ts.
     */
    inbound?: InboundLimits
    // lazy rooms (issue 15)
    /** A room nobody used for this long is unloaded (loaded again on demand); default 300 000 ms, 0 = never. */
    roomIdleUnloadMs?: number
    // periodic re-sync (issue 15 flake)
    /** Every loaded shared room is checked again with each linked peer this often; default 30 000 ms, 0 = never. */
    resyncIntervalMs?: number
  }
  authority?: {
    /** Refusals within the window that demote a principal or peer mesh to tier 4; default 5. */
    violationThreshold?: number
    /** default 600 000 ms */
    violationWindowMs?: number
    /** How often spent invocations past their time are forgotten; default 600 000 ms. */
    pruneIntervalMs?: number
    /** Accepted interactions are counted once per principal per this window; default 5 000 ms. */
    interactionFlushMs?: number
    /**
     * did:web resolution (an invoker on `/api/invoke`, a proof's or a credential's
     * issuer): anyone can name a did:web, so its document is fetched under limits.
     */
    didWeb?: {
      /** Fetch from hosts on loopback/private/link-local/ULA addresses: true, or these hosts (`host` or `host:port`); default false. */
      allowPrivate?: boolean | string[]
      /** Hosts (`host` or `host:port`) fetched over plain HTTP; default none (https only). */
      insecureHosts?: string[]
      /** Lookup, connect and body of one document together; default 5 000 ms. */
      timeoutMs?: number
      /** Largest document read (the connection is dropped past it); default 65 536 bytes. */
      maxDocumentBytes?: number
      /** Resolutions in flight at once (more are refused, MESH_UNAVAILABLE); default 8. */
      maxConcurrent?: number
      /** A resolved document is kept this long; default 300 000 ms. */
      cacheTtlMs?: number
      /** A failed resolution is remembered (not retried) this long; default 60 000 ms. */
      failureTtlMs?: number
      /** Most answers kept, documents and failures; default 1 000. */
      maxCacheEntries?: number
    }
  }
  /** Where JSON log lines go; default a pino logger on stdout. */
  logger?: Logger
  // Outbound invocation over libp2p
  /**
   * `/mesh/invoke/1.0.0` (connections/invoke-protocol.ts): inbound streams per connection
   * (default 4), invocations per peer per minute (60), request read timeout (5 000 ms),
   * invocation / exchange timeout (15 000 ms), largest answer read (256 KiB), invocations
   * one member sends per minute (30).
   */
  outbound?: InvokeProtocolInit
  // accountability across meshes (SPEC §11)
  /**
   * `/mesh/audit/1.0.0` (connections/audit-protocol.ts): requests per peer per minute
   * (default 120), inbound streams per connection (4), exchange timeout (10 000 ms),
   * largest answer read (512 KiB).
   */
  auditProtocol?: AuditProtocolInit
}

// issue 14: deployment — the public URL a reverse proxy serves, the libp2p addresses announced
/** Merged into MeshNodeInit above: how a node run for real is reached from outside. */
export interface MeshNodeInit {
  /**
   * Multiaddrs announced instead of the listen addresses (e.g. `/dns4/mesh.example.org/tcp/4001`
   * for a node listening on `/ip4/0.0.0.0/tcp/4001`): in the manifest, discovery records and
   * heartbeats. Default none: the listen addresses.
   */
  announce?: string[]
  /**
   * The URL browsers and other meshes reach the HTTP API by, e.g. `https://mesh.example.org`
   * behind a TLS reverse proxy: the manifest's `endpoints.http`, the agents' invocation URL,
   * and a Host (and origin) the server answers to. Default: the listen address.
   */
  publicUrl?: string
}

// reachable by URL (SPEC §10)
export interface MeshNodeInit {
  /** A line about the mesh, in its manifest, DHT record and registry heartbeat (at most 280 characters). */
  description?: string
}

/** The Host/Origin checks of a node: its listen options', plus its public URL's name and origin. */
export function nodeOriginGuard(init: Pick<MeshNodeInit, 'http' | 'publicUrl'>): OriginGuardInit {
  const guard = originGuardOf(init.http)
  if (init.publicUrl === undefined) return guard
  const url = new URL(init.publicUrl)
  return {
    ...guard,
    allowedHosts: [...(guard.allowedHosts ?? []), url.hostname],
    allowedOrigins: [...(guard.allowedOrigins ?? []), url.origin],
  }
}

/** The URL a local client reaches a server by: a wildcard bind (0.0.0.0, ::) is reached on loopback. */
export function localHttpUrl(host: string, port: number): string {
  const reach = host === '0.0.0.0' ? '127.0.0.1' : host === '::' || host === '[::]' ? '::1' : host
  return `http://${reach.includes(':') ? `[${reach}]` : reach}:${port}`
}

// reachability (SPEC §10): relays
/** Merged into MeshNodeInit above: relaying for meshes that cannot be dialled, and relays to be reached through. */
export interface MeshNodeInit {
  /**
   * Serve as a circuit relay v2 (`mesh start --relay`): `true` for the defaults, or limits
   * (p2p/reachability.ts RELAY_SERVICE_DEFAULTS: 64 reservations of 1 h, circuits of 30 min
   * and 64 MiB, 8 circuits in flight per peer). Default off.
   */
  relay?: boolean | RelayServiceInit
  /**
   * Relays (multiaddrs ending `/p2p/<peer id>`) this node takes a reservation on, so that it
   * is reached through them (`--relay-via`); its relay addresses then go in its mesh record
   * and heartbeat. Default none. A node that lists `/p2p-circuit` in `listen` also looks for
   * relays among the meshes it meets.
   */
  relayVia?: string[]
}

// the model proxy (SPEC §13)
/** Merged into MeshNodeInit above: the OpenAI-compatible model proxy and its quotas. */
export interface MeshNodeInit {
  /**
   * `mesh start --model-upstream URL`: the upstream's base URL (OpenAI style, e.g.
   * `https://api.openai.com/v1`), its key (default: `MESH_MODEL_API_KEY` from the
   * environment), its timeout, the largest request body (default 1 MiB) and the quota
   * policy (model/quotas.ts DEFAULT_QUOTA_POLICY, overridden field by field). Without an
   * upstream, /v1/* answers MESH_UNAVAILABLE.
   */
  model?: {
    upstream?: string
    apiKey?: string
    timeoutMs?: number
    maxBodyBytes?: number
    quotas?: QuotaOverrides
  }
}

// store and forward (SPEC §10): /mesh/mailbox/1.0.0
/** Merged into MeshNodeInit above: the mailbox a relay keeps for meshes that are away, and this mesh's own. */
export interface MeshNodeInit {
  /**
   * Relay side (a node started with `relay`): items kept per recipient at most (`maxItems`,
   * default 1 000; `maxBytes`, 16 MiB), for at most `ttlMs` (7 days), expired ones dropped every
   * `pruneIntervalMs` (60 s). Mesh side: an item this mesh leaves may wait `itemTtlMs` (7 days);
   * its own relays are asked for waiting items every `pollIntervalMs` (60 s; 0 = only at start
   * and on reconnecting to them).
   */
  mailbox?: MailboxRelayInit & Pick<MailboxClientInit, 'itemTtlMs' | 'pollIntervalMs'>
}

// coordination fees (SPEC §10)
/** Merged into MeshNodeInit above: relay receipts and the free allowance (ledger/relay-fees.ts). */
export interface MeshNodeInit {
  /**
   * As a relay: `freeBytes` a beneficiary may leave unreceipted (default 8 MiB), `graceMs`,
   * `maxDebtBytes`, `slackBytes`; as a beneficiary: `signReceipts` (default true),
   * `receiptBytes` (1 MiB), `receiptIntervalMs` (2000).
   */
  fees?: RelayFeesInit
}

// files in rooms (issue 18)
/** Merged into MeshNodeInit above: files attached to room messages (`<data dir>/blobs`). */
export interface MeshNodeInit {
  files?: {
    /** Largest file uploaded or fetched (`--max-file-bytes`); default 25 MiB; over it MESH_TOO_LARGE. */
    maxFileBytes?: number
    /** Disk kept for files fetched from peers, least recently used go first (`--file-cache-bytes`); default 512 MiB. */
    cacheBytes?: number
    /** `/mesh/files/1.0.0` requests a peer mesh may send per minute; default 1 200. */
    requestsPerMinute?: number
    /** Bytes per second one transfer to a peer is served at most; default unbounded. */
    serveBytesPerSecond?: number
  }
}

// connection budget (issue 15)
/** Merged into MeshNodeInit above: the libp2p host's connection cap. */
export interface MeshNodeInit {
  /**
   * libp2p connections to other meshes at most (`--max-peer-connections`); default 300. The
   * DHT routing table holds at most half as many peers, a quarter are kept-alive neighbours,
   * and idle connections are closed above three quarters (p2p/connection-budget.ts).
   */
  maxPeerConnections?: number
}
