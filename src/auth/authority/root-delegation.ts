import type { AuditLog } from '../../audit/index.ts'
import type { Ed25519KeyPair } from '../../identity/index.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../../store/index.ts'
import { type Block, decodeToken, encodeToken, issueDelegation } from './token.ts'

interface RootRecord {
  token: string
  cid: string
  architect: string
  exp: number
  /** The mesh key that issued it (a key rotation re-issues it); absent in older records. */
  mesh?: string
}

export interface RootDelegationComponents {
  store: MeshStore
  audit: Pick<AuditLog, 'append'>
  /** The mesh key: root of every resource under this mesh's did. */
  meshKey: Ed25519KeyPair
}

export interface RootDelegationInit {
  /** Lifetime of the root delegation (re-issued when less than a tenth is left); default 365 days. */
  ttlSeconds?: number
  /** default `Date.now` */
  now?: () => number
}

/**
 * The long-lived root delegation `{can: '*', with: <mesh did>}` from the mesh key to
 * its architect, kept in the `delegations` sublevel (`1/root`). Its blocks are known
 * locally, so the architect's chains may link it rather than embed it.
 */
export class RootDelegation {
  readonly #sub: Sublevel<RootRecord | string>
  readonly #audit: Pick<AuditLog, 'append'>
  readonly #meshKey: Ed25519KeyPair
  readonly #ttl: number
  readonly #now: () => number
  readonly #blocks = new Map<string, Block>()
  #root: RootRecord | undefined

  constructor(components: RootDelegationComponents, init: RootDelegationInit = {}) {
    this.#sub = components.store.sublevel<RootRecord | string>('delegations')
    this.#audit = components.audit
    this.#meshKey = components.meshKey
    this.#ttl = init.ttlSeconds ?? 365 * 24 * 3600
    this.#now = init.now ?? Date.now
  }

  async open(): Promise<void> {
    const root = await this.#sub.get('1/root')
    if (root !== undefined && typeof root === 'object') this.#apply(root)
  }

  /** A proof block known here (the root delegation's), by CID. */
  block(cid: string): Block | undefined {
    return this.#blocks.get(cid)
  }

  /** The current root delegation, if any. */
  current(): { token: string; cid: string; exp: number; architect: string } | undefined {
    return this.#root === undefined ? undefined : { ...this.#root }
  }

  /**
   * The root delegation to `architect`; re-issued when missing, for another architect,
   * from an older mesh key, or near its end — with an audit row in the same batch.
   */
  async ensure(architect: string): Promise<{ token: string; cid: string; exp: number }> {
    const meshDid = this.#meshKey.did
    const now = Math.floor(this.#now() / 1000)
    const root = this.#root
    if (
      root !== undefined &&
      root.architect === architect &&
      root.mesh === meshDid &&
      root.exp - now > this.#ttl / 10
    ) {
      return { token: root.token, cid: root.cid, exp: root.exp }
    }
    const exp = now + this.#ttl
    const delegation = await issueDelegation({
      issuer: this.#meshKey,
      audience: architect,
      capabilities: [{ can: '*', with: meshDid }],
      expiration: exp,
    })
    const record: RootRecord = {
      token: await encodeToken(delegation),
      cid: delegation.cid.toString(),
      architect,
      exp,
      mesh: meshDid,
    }
    await this.#audit.append(
      {
        action: 'authority.root-delegated',
        actor: meshDid,
        subject: architect,
        details: { cid: record.cid, exp, previous: root?.cid ?? null },
      },
      {
        with: [{ type: 'put', sublevel: this.#sub, key: '1/root', value: record } as StoreOperation],
      },
    )
    this.#apply(record)
    return { token: record.token, cid: record.cid, exp }
  }

  #apply(record: RootRecord): void {
    const decoded = decodeToken(record.token)
    if (decoded.error !== undefined)
      throw new Error(`stored root delegation is unreadable: ${decoded.error.message}`)
    for (const [cid, block] of decoded.ok.blocks) this.#blocks.set(cid, block)
    this.#root = record
  }
}
