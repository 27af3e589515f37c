import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { Connection, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { AuditPage, AuditRow, AuditVerifyReport } from '../../src/audit/index.ts'
import {
  classifyDeliveryError,
  createEnvelope,
  encodeEnvelope,
  exchange,
  MESH_CONNECT_PROTOCOL,
  type RejectedEntry,
} from '../../src/connections/index.ts'
import { Ed25519KeyPair, peerIdFromDid } from '../../src/identity/index.ts'
import { bob, mallory } from '../fixtures/principals.ts'
import { startHost, waitFor } from '../p2p/nodes.ts'
import {
  FAST,
  peerActProofs,
  requestConnection,
  requestEnvelope,
  sendRaw,
  startNode,
  statusAt,
  type TestNode,
} from './nodes.ts'

type Reply = Awaited<ReturnType<typeof sendRaw>>

/** A hostile mesh: its own key and libp2p host; its human architect is `mallory`. */
async function attacker(t: TestContext) {
  const key = Ed25519KeyPair.generate()
  const { libp2p } = await startHost(t, { key })
  return { key, libp2p }
}

function refusedWith(reply: Reply, code: string, reason?: string): void {
  assert.equal(reply.type, 'connect.error', JSON.stringify(reply.body))
  assert.equal(reply.body.code, code, JSON.stringify(reply.body))
  if (reason !== undefined) assert.equal((reply.body.details as { reason?: string }).reason, reason)
}

/** The refusal is in /api/federation/rejected and in the audit log, and nothing about the peer is stored. */
async function loggedAndNothingStored(
  node: TestNode,
  peer: string,
  code: string,
  stored = false,
): Promise<void> {
  const rejected = await node.api.get<{ entries: RejectedEntry[] }>(
    `/api/federation/rejected?code=${code}&peer=${encodeURIComponent(peer)}`,
  )
  assert.ok(rejected.entries.length > 0, `${code} from ${peer} in rejected`)
  const audit = await node.api.get<AuditPage>('/api/audit?action=federation.refused&limit=500')
  assert.ok(
    audit.entries.some((e) => e.actor === peer && e.details.code === code),
    `${code} from ${peer} in the audit log`,
  )
  if (!stored) {
    assert.equal(
      (await node.connections()).filter((c) => c.peerDid === peer).length,
      0,
      'no connection stored',
    )
    assert.equal((await node.peers()).filter((p) => p.did === peer).length, 0, 'no peer stored')
  }
}

describe('hostile peers on /mesh/connect/1.0.0', () => {
  it('refuses forged, replayed (also after a restart), skewed, wrong-version, wrongly signed and reflected messages', async (t) => {
    const b = await startNode(t, 'beta')

    // Forged signature: the body was changed after signing.
    const m1 = await attacker(t)
    const forged = await requestEnvelope(m1.key, mallory, b)
    forged.body.name = 'someone-else'
    refusedWith(await sendRaw(m1.libp2p, b, encodeEnvelope(forged)), 'MESH_SIGNATURE_MISMATCH')
    await loggedAndNothingStored(b, m1.key.did, 'MESH_SIGNATURE_MISMATCH')

    // Timestamp 61 s off, both ways.
    const m2 = await attacker(t)
    for (const off of [-61_000, 61_000]) {
      const skewed = await requestEnvelope(m2.key, mallory, b, { now: Date.now() + off })
      refusedWith(await sendRaw(m2.libp2p, b, encodeEnvelope(skewed)), 'MESH_CLOCK_SKEW')
    }
    await loggedAndNothingStored(b, m2.key.did, 'MESH_CLOCK_SKEW')

    // Unknown protocol version: in the envelope, and in libp2p's negotiation.
    const m3 = await attacker(t)
    const v2 = await requestEnvelope(m3.key, mallory, b, { protocol: '/mesh/connect/2.0.0' })
    refusedWith(await sendRaw(m3.libp2p, b, encodeEnvelope(v2)), 'MESH_PROTOCOL_VERSION')
    await loggedAndNothingStored(b, m3.key.did, 'MESH_PROTOCOL_VERSION')
    const negotiation = await exchange(m3.libp2p, peerIdFromDid(b.node.did), encodeEnvelope(v2), {
      protocol: '/mesh/connect/2.0.0',
      signal: AbortSignal.timeout(5000),
    }).catch((err: unknown) => classifyDeliveryError(err))
    assert.ok(!(negotiation instanceof Uint8Array))
    assert.equal(negotiation.kind, 'protocol-version')
    assert.equal(negotiation.code, 'MESH_PROTOCOL_VERSION')

    // The act is signed by bob, not by the architect the request declares (mallory).
    const m4 = await attacker(t)
    const notArchitect = await requestEnvelope(m4.key, mallory, b, { actSigner: bob })
    refusedWith(await sendRaw(m4.libp2p, b, encodeEnvelope(notArchitect)), 'MESH_FORBIDDEN')
    await loggedAndNothingStored(b, m4.key.did, 'MESH_FORBIDDEN')

    // No human at all: the mesh key signs the act and declares itself the architect.
    const m5 = await attacker(t)
    const meshSigned = await requestEnvelope(m5.key, mallory, b, {
      actSigner: m5.key,
      architectDid: m5.key.did,
    })
    refusedWith(await sendRaw(m5.libp2p, b, encodeEnvelope(meshSigned)), 'MESH_NOT_HUMAN_SIGNED')
    await loggedAndNothingStored(b, m5.key.did, 'MESH_NOT_HUMAN_SIGNED')

    // Replayed envelope: the first copy is applied, the second refused — also after a restart.
    const m6 = await attacker(t)
    const valid = encodeEnvelope(await requestEnvelope(m6.key, mallory, b))
    const first = await sendRaw(m6.libp2p, b, valid)
    assert.equal(first.type, 'connect.ack', JSON.stringify(first.body))
    assert.equal(first.body.status, 'pending')
    refusedWith(await sendRaw(m6.libp2p, b, valid), 'MESH_REPLAY', 'duplicate')
    await b.restart()
    refusedWith(await sendRaw(m6.libp2p, b, valid), 'MESH_REPLAY', 'duplicate')
    await loggedAndNothingStored(b, m6.key.did, 'MESH_REPLAY', true)
    assert.equal((await b.connections()).filter((c) => c.peerDid === m6.key.did).length, 1)

    // Reflection: beta asks m7 to connect; m7 captures beta's envelope and sends it back.
    const m7 = await attacker(t)
    let captured: Uint8Array | undefined
    await m7.libp2p.handle(MESH_CONNECT_PROTOCOL, async (stream: Stream, _c: Connection) => {
      captured = (await lpStream(stream).read()).subarray()
      stream.abort(new Error('no answer'))
    })
    await b.api.post('/api/connections', {
      target: String(m7.libp2p.getMultiaddrs()[0]),
      ucan: await b.act('mesh/connect', m7.key.did),
    })
    const reflected = await waitFor(() => captured, 'beta’s request at m7')
    refusedWith(await sendRaw(m7.libp2p, b, reflected), 'MESH_REPLAY', 'reflected')
    await loggedAndNothingStored(b, m7.key.did, 'MESH_REPLAY', true)

    // A message for another mesh (wrong target) is refused too.
    const m8 = await attacker(t)
    const elsewhere = createEnvelope(m8.key, {
      type: 'connect.request',
      target: bob.did,
      protocol: MESH_CONNECT_PROTOCOL,
      body: {},
    })
    refusedWith(await sendRaw(m8.libp2p, b, encodeEnvelope(elsewhere)), 'MESH_REPLAY', 'wrong-target')
  })

  it('refuses denied and non-allowlisted meshes with the policy codes', async (t) => {
    const b = await startNode(t, 'beta')
    const m = await attacker(t)
    const policy = await b.api.get<Record<string, unknown>>('/api/federation/policy')
    await b.api.put('/api/federation/policy', { ...policy, deny: [m.key.did] })
    refusedWith(
      await sendRaw(m.libp2p, b, encodeEnvelope(await requestEnvelope(m.key, mallory, b))),
      'MESH_POLICY_REJECTED',
    )
    await loggedAndNothingStored(b, m.key.did, 'MESH_POLICY_REJECTED')
    await b.api.put('/api/federation/policy', { ...policy, mode: 'allowlist', allow: [bob.did] })
    refusedWith(
      await sendRaw(m.libp2p, b, encodeEnvelope(await requestEnvelope(m.key, mallory, b))),
      'MESH_PEER_UNKNOWN',
    )
    await loggedAndNothingStored(b, m.key.did, 'MESH_PEER_UNKNOWN')
    await b.api.put('/api/federation/policy', { ...policy, mode: 'closed' })
    refusedWith(
      await sendRaw(m.libp2p, b, encodeEnvelope(await requestEnvelope(m.key, mallory, b))),
      'MESH_POLICY_REJECTED',
    )
    const audit = await b.api.get<AuditPage>('/api/audit?action=federation.policy.changed')
    assert.equal(audit.entries.length, 3)
  })

  it('a flood from one peer is rate-limited while another mesh still connects', async (t) => {
    const b = await startNode(t, 'beta', {
      connections: { ...FAST, rateLimit: { capacity: 5, refillPerSecond: 1 } },
    })
    const a = await startNode(t, 'alpha')
    const m = await attacker(t)
    // Five at a time, on one connection made first: the muxer ends a connection on which
    // the peer opens more than 10 streams before this side's end of it is set up (its
    // "early streams": on a busy machine that end lags the dialler's), and libp2p opens
    // streams of its own there too.
    await m.libp2p.dial(multiaddr(b.addr()))
    const replies: Reply[] = []
    const started = performance.now()
    for (let round = 0; round < 8; round++) {
      replies.push(
        ...(await Promise.all(
          Array.from({ length: 5 }, async () =>
            sendRaw(m.libp2p, b, encodeEnvelope(await requestEnvelope(m.key, mallory, b))),
          ),
        )),
      )
    }
    // 5 tokens, then 1 a second: at most that many of the 40 got through.
    const allowed = 5 + Math.ceil((performance.now() - started) / 1000)
    const limited = replies.filter((r) => r.body.code === 'MESH_RATE_LIMITED').length
    assert.ok(limited >= 40 - allowed, `rate limited: ${limited} of 40, at most ${allowed} allowed`)
    // The pending bound: one request from m is kept, the others are conflicts.
    assert.equal(replies.filter((r) => r.type === 'connect.ack').length, 1)
    assert.ok(replies.some((r) => r.body.code === 'MESH_CONFLICT'))
    const rejected = await b.api.get<{ entries: RejectedEntry[] }>(
      '/api/federation/rejected?code=MESH_RATE_LIMITED',
    )
    assert.ok(rejected.entries.length >= 1)
    assert.ok(rejected.entries.length < limited, 'refusals of a flood are recorded, not each one')

    const id = await requestConnection(a, b)
    await waitFor(async () => (await statusAt(b, id))?.status === 'pending', 'alpha’s request at beta')
  })

  it('an answer must echo the request nonce and be signed by the declared human architect', async (t) => {
    const a = await startNode(t, 'alpha')
    const m = await attacker(t)
    let request: { id: string; body: { connectionId: string; nonce: string } } | undefined
    await m.libp2p.handle(MESH_CONNECT_PROTOCOL, async (stream: Stream) => {
      request ??= JSON.parse(Buffer.from((await lpStream(stream).read()).subarray()).toString('utf8'))
      stream.abort(new Error('no answer'))
    })
    await a.api.post('/api/connections', {
      target: String(m.libp2p.getMultiaddrs()[0]),
      ucan: await a.act('mesh/connect', m.key.did),
    })
    const req = await waitFor(() => request, 'alpha’s request at m')
    const id = req.body.connectionId
    const answer = async (nonce: string, signer: Ed25519KeyPair, architectDid = mallory.did) =>
      encodeEnvelope(
        createEnvelope(m.key, {
          type: 'connect.accept',
          target: a.node.did,
          protocol: MESH_CONNECT_PROTOCOL,
          body: {
            connectionId: id,
            requestNonce: nonce,
            agreementVersion: 1,
            architectDid,
            decidedAt: Date.now(),
          },
          auth: { proofs: await peerActProofs(m.key, signer, 'connection/accept', id) },
        }),
      )
    refusedWith(
      await sendRaw(m.libp2p, a, await answer('A'.repeat(22), mallory)),
      'MESH_REPLAY',
      'request-nonce',
    )
    refusedWith(
      await sendRaw(m.libp2p, a, await answer(req.body.nonce, m.key, m.key.did)),
      'MESH_NOT_HUMAN_SIGNED',
    )
    refusedWith(await sendRaw(m.libp2p, a, await answer(req.body.nonce, bob)), 'MESH_FORBIDDEN')
    assert.equal((await statusAt(a, id))?.status, 'pending')
    const ok = await sendRaw(m.libp2p, a, await answer(req.body.nonce, mallory))
    assert.equal(ok.type, 'connect.ack', JSON.stringify(ok.body))
    assert.equal((await statusAt(a, id))?.status, 'accepted')
    const rejected = await a.api.get<{ entries: RejectedEntry[] }>(
      `/api/federation/rejected?peer=${m.key.did}`,
    )
    assert.ok(rejected.entries.length >= 3)
  })

  it('HTTP: an act by a key the root delegation was not given to is refused, a replayed act refused, both logged', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    await assert.rejects(
      a.api.post('/api/connections', {
        target: b.addr(),
        ucan: await a.act('mesh/connect', b.node.did, bob),
      }),
      { code: 'MESH_UCAN_INVALID' },
    )
    assert.deepEqual(await a.connections(), [])
    const ucan = await a.act('mesh/connect', b.node.did)
    await a.api.post('/api/connections', { target: b.addr(), ucan })
    const id = (await a.connections())[0]?.id as string
    await a.api.post(`/api/connections/${id}/disconnect`, { ucan: await a.act('connection/disconnect', id) })
    await assert.rejects(a.api.post('/api/connections', { target: b.addr(), ucan }), { code: 'MESH_REPLAY' })
    const rejected = await a.api.get<{ entries: RejectedEntry[] }>('/api/federation/rejected')
    assert.deepEqual(
      rejected.entries.map((e) => [e.kind, e.code]),
      [
        ['http.connect', 'MESH_REPLAY'],
        ['http.connect', 'MESH_UCAN_INVALID'],
      ],
    )
    const audit = await a.api.get<AuditPage>('/api/audit?action=federation.refused')
    assert.equal(audit.entries.length, 2)
  })

  it('a tampered audit row is found by GET /api/audit/verify', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    const id = await requestConnection(a, b)
    await waitFor(async () => (await statusAt(b, id))?.status === 'pending', 'the request at beta')
    assert.equal((await b.api.get<AuditVerifyReport>('/api/audit/verify')).ok, true)
    const audit = b.node.store.sublevel<AuditRow>('audit')
    const key = 'entry/v1/0000000000000001'
    const row = (await audit.get(key)) as AuditRow
    await audit.put(key, { ...row, details: { ...row.details, direction: 'outbound' } })
    const report = await b.api.get<AuditVerifyReport>('/api/audit/verify')
    assert.equal(report.ok, false)
    assert.equal(report.problems[0]?.seq, 1)
    assert.equal(report.problems[0]?.kind, 'altered')
  })
})
