import { b64url, DID_KEY, strictObject } from './common.ts'

/**
 * Identity and session (SPEC §3): health, challenge/response sign-in, logout, `me`.
 * Response shapes here describe what the node sends; these routes are served without a
 * response schema (nothing is filtered off the wire), so the schemas are for types.
 */

export const challengeSchema = strictObject({ nonce: { type: 'string' }, expiresAt: { type: 'string' } }, [
  'nonce',
  'expiresAt',
])

/** `POST /api/session`: Ed25519 over `mesh-session:<mesh did>:<nonce>`, base64url. */
export const sessionBodySchema = strictObject({ did: DID_KEY, nonce: b64url(128), signature: b64url(128) }, [
  'did',
  'nonce',
  'signature',
])

export const sessionTokenSchema = strictObject({ token: { type: 'string' }, expiresAt: { type: 'string' } }, [
  'token',
  'expiresAt',
])

export const SESSION_ROLES = ['architect', 'human', 'agent'] as const

export const meSchema = strictObject(
  {
    did: { type: 'string' },
    role: { type: 'string', enum: SESSION_ROLES },
    expiresAt: { type: 'string' },
  },
  ['did', 'role', 'expiresAt'],
)

export const HEALTH_STATUSES = ['ok', 'degraded', 'unhealthy'] as const

export const healthSchema = strictObject(
  {
    /** 'degraded': working, but the store lost acknowledged writes at its last open. */
    status: { type: 'string', enum: HEALTH_STATUSES },
    /** The store's own report (store/store-monitor.ts). */
    store: {
      type: 'object',
      additionalProperties: true,
      required: ['status'],
      properties: { status: { type: 'string' } },
    },
    did: { type: 'string' },
    peerId: { type: 'string' },
    multiaddrs: { type: 'array', items: { type: 'string' } },
    version: { type: 'string' },
  },
  ['status', 'store', 'did', 'peerId', 'multiaddrs', 'version'],
)

/** The signed mesh manifest (`/.well-known/mesh-manifest.json`; its schema lives in src/manifest). */
export const manifestSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['manifestVersion', 'name', 'version', 'did', 'peerId', 'endpoints', 'protocolVersions'],
  properties: {
    manifestVersion: { type: 'string' },
    name: { type: 'string' },
    description: { type: 'string' },
    version: { type: 'string' },
    did: { type: 'string' },
    peerId: { type: 'string' },
    architect: { type: 'string' },
    endpoints: {
      type: 'object',
      additionalProperties: true,
      required: ['http', 'libp2p'],
      properties: {
        http: { type: 'string' },
        libp2p: { type: 'array', items: { type: 'string' } },
        yjs: { type: 'string' },
        registry: { type: 'string' },
      },
    },
    protocolVersions: { type: 'array', items: { type: 'string' } },
    capabilities: { type: 'array', items: { type: 'string' } },
  },
} as const
