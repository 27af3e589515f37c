import type { TestContext } from 'node:test'
import { AuditLog, RefusalThrottle, RejectedLog } from '../../src/audit/index.ts'
import { ActGate } from '../../src/auth/acts/index.ts'
import { Authority } from '../../src/auth/authority/index.ts'
import { actCapability, invocationToken, proofOf } from '../../src/cli/chains.ts'
import { CONNECT_PROTOCOLS } from '../../src/connections/connect-protocol.ts'
import { ConnectionBook } from '../../src/connections/connection-book.ts'
import { EnvelopeVerifier } from '../../src/connections/envelope.ts'
import { createInbound } from '../../src/connections/inbound/index.ts'
import { LocalActs } from '../../src/connections/local-acts.ts'
import { Outbox } from '../../src/connections/outbox.ts'
import { PeerRotation } from '../../src/connections/peer-rotation.ts'
import { PeerBook } from '../../src/connections/peers.ts'
import { PolicyService } from '../../src/connections/policy.ts'
import { RateLimiter } from '../../src/connections/rate-limiter.ts'
import { Refusals } from '../../src/connections/refusals.ts'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { tempStore } from '../fixtures/principals.ts'

/**
 * One mesh's connection pieces over a real store, without libp2p: the book, local
 * acts, and the receiving side (with every handler). Its outbox is never started:
 * what a step queues for the peer stays there to be read.
 */
export async function meshPieces(
  t: TestContext,
  key: Ed25519KeyPair,
  architect: Ed25519KeyPair,
  name: string,
) {
  const store = await tempStore(t)
  const logger = silentLogger()
  const audit = new AuditLog({ store, key })
  await audit.start()
  t.after(() => audit.stop())
  const peers = new PeerBook(store)
  const policy = new PolicyService({ store })
  const rejected = new RejectedLog({ store })
  const envelopes = new EnvelopeVerifier({ store, selfDid: () => key.did, protocols: CONNECT_PROTOCOLS })
  // Every act is a chain: the mesh's authority, its architect holding the root delegation.
  const authority = new Authority({ store, audit, meshKey: key, meshName: name, architectDid: architect.did })
  await authority.start()
  t.after(() => authority.stop())
  const root = proofOf((await authority.ensureRootDelegation(architect.did)).token)
  const acts = new ActGate({ authority: () => authority })
  const book = new ConnectionBook({ store, peers })
  const outbox = new Outbox({
    store,
    handler: {
      deliver: async () => {
        throw new Error('not delivered in this test')
      },
      isPermanent: () => false,
      fail: async () => {},
    },
  })
  const refusals = new Refusals({ audit, rejected, logger, rateLimited: new RefusalThrottle() })
  const shutdown = new AbortController()
  const rotation = new PeerRotation({
    book,
    peers,
    store,
    audit,
    envelopes,
    outbox,
    refusals,
    logger,
    shutdown: () => shutdown.signal,
  })
  const init = {
    name,
    architectDid: architect.did,
    multiaddrs: () => [],
    protocolVersions: () => [...CONNECT_PROTOCOLS],
  }
  const local = new LocalActs({ book, peers, policy, acts, audit, outbox, refusals, key: () => key }, init)
  const inbound = createInbound(
    {
      limiter: new RateLimiter(),
      envelopes,
      peers,
      policy,
      acts,
      book,
      audit,
      refusals,
      rotation,
      key: () => key,
      logger,
    },
    { name },
  )
  /** The architect's (or `signer`'s) chain act on this mesh, proved by the root delegation. */
  const act = (what: string, subject: string, signer = architect) =>
    invocationToken(signer, key.did, actCapability(key.did, what, subject), [root])
  // The federation rows (the authority's own start rows left out).
  const actions = async () =>
    (await audit.list({ limit: 500 })).entries
      .filter((r) => r.action.startsWith('federation.'))
      .map((r) => [r.action, r.actor])
  return { store, audit, book, outbox, local, inbound, rejected, acts, act, actions }
}
