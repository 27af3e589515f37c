import type { Logger } from './log.ts'
import type { InboundLimits } from './rooms/room-sync.ts'

/** The software version reported in health, manifest, records and heartbeats. */
export const MESH_NODE_VERSION = '0.1.0'

/** Everything a node can be told at start. Only `dataDir` is required. */
export interface MeshNodeInit {
  /** The node's data dir: mesh key, LevelDB, the running node's address file. */
  dataDir: string
  /** HTTP API and console; default 127.0.0.1:7700 (port 0 picks a free one). */
  http?: { host?: string; port?: number }
  /** libp2p listen multiaddrs; default ['/ip4/127.0.0.1/tcp/0']. */
  listen?: string[]
  /** A registry to bootstrap from (its public list) and, for a public mesh, to heartbeat to. */
  registryUrl?: string
  /** Multiaddrs (with /p2p/…) of meshes to join the DHT through. */
  bootstrap?: string[]
  /** Also serve a registry (heartbeats and public list) from this node; default false. */
  serveRegistry?: boolean
  /** List this mesh: heartbeats to the registry and an entry in the DHT directory; default false. */
  public?: boolean
  discovery?: {
    /** How often to republish this mesh's record and look for new meshes; default 10 000 ms. */
    intervalMs?: number
  }
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
  }
  authority?: {
    /**
     * Whether the interim human acts of the connections issue (connections/human-act.ts)
     * are still accepted beside UCAN chains for connection acts, locally and from peers
     * (a compatibility switch: the CLI and the console sign chains); default false.
     */
    acceptInterimActs?: boolean
    /** Refusals within the window that demote a principal or peer mesh to tier 4; default 5. */
    violationThreshold?: number
    /** default 600 000 ms */
    violationWindowMs?: number
    /** How often spent invocations past their time are forgotten; default 600 000 ms. */
    pruneIntervalMs?: number
    /** Accepted interactions are counted once per principal per this window; default 5 000 ms. */
    interactionFlushMs?: number
  }
  /** Where JSON log lines go; default a pino logger on stdout. */
  logger?: Logger
}
