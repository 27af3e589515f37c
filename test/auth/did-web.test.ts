import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import { delegate as ucantoDelegate, invoke as ucantoInvoke } from '@ucanto/core'
import type * as API from '@ucanto/interface'
import { createVerifiableCredentialJwt } from 'did-jwt-vc'
import { isNonPublicAddress } from '../../src/auth/authority/did.ts'
import { agentResourceOf, DidResolver, didWebDocument, encodeToken } from '../../src/auth/authority/index.ts'
import { jwtSigner, ucantoSigner } from '../../src/auth/authority/principal.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import { HttpClient } from '../../src/cli/http-client.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { startNode } from '../connections/nodes.ts'
import {
  alice,
  delegate,
  didWebOf,
  invoke,
  mallory,
  NOW_S,
  room,
  service,
  startMesh,
  vcPayload,
} from './authority-fixtures.ts'
import { grant, rootOf } from './chain-acts.ts'

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {}
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/**
 * A loopback HTTP server standing in for an attacker's (or a partner's) did:web host:
 * it counts TCP connections and requests and answers with `handler`.
 */
async function webHost(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen = { connections: 0, requests: 0 }
  const server = createServer((req, res) => {
    seen.requests++
    handler(req, res)
  })
  server.on('connection', () => {
    seen.connections++
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`
  return { host, seen, server }
}

describe('did:web resolution under limits', () => {
  it('refuses a did:web on a loopback or private address without sending anything', async (t) => {
    const { host, seen } = await webHost(t, (_req, res) => res.writeHead(404).end())
    const port = host.split(':')[1]
    // Plain HTTP allowed for these hosts, so only the address rule stands in the way.
    const resolver = new DidResolver({ insecureHosts: [host, `localhost:${port}`] })
    const direct = await resolver.resolve(didWebOf(host))
    assert.equal(direct.error?.code, 'MESH_FORBIDDEN', JSON.stringify(direct.error))
    // A name that resolves to loopback is no better.
    const named = await resolver.resolve(`did:web:localhost%3A${port}:users:eve`)
    assert.equal(named.error?.code, 'MESH_FORBIDDEN', JSON.stringify(named.error))
    // Every address of a name is checked, not just the first.
    const mixed = new DidResolver({
      lookup: async () => [
        { address: '93.184.216.34', family: 4 },
        { address: '10.1.2.3', family: 4 },
      ],
    })
    const rebinding = await mixed.resolve('did:web:partner.example')
    assert.equal(rebinding.error?.code, 'MESH_FORBIDDEN')
    assert.equal(rebinding.error?.details.reason, 'non-public')
    assert.ok(!JSON.stringify(rebinding.error).includes('10.1.2.3'), 'the internal address is not told')
    assert.equal(seen.connections, 0, 'the attacker host saw no connection')
    assert.equal(resolver.fetches + mixed.fetches, 0)

    for (const a of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '64:ff9b::a00:1',
      'ff02::1',
    ]) {
      assert.equal(isNonPublicAddress(a), true, a)
    }
    for (const a of ['93.184.216.34', '1.1.1.1', '2606:4700:4700::1111']) {
      assert.equal(isNonPublicAddress(a), false, a)
    }
  })

  it('cuts an oversized document off at the cap: the connection closes long before the body ends', async (t) => {
    const TOTAL = 10 * 1024 * 1024
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    const served = { written: 0, finished: false, closed: deferred() }
    const { host } = await webHost(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/did+json' })
      res.on('close', () => served.closed.resolve())
      const pump = () => {
        while (served.written < TOTAL && !res.destroyed) {
          served.written += chunk.length
          if (!res.write(chunk)) {
            res.once('drain', pump)
            return
          }
        }
        if (served.written >= TOTAL && !res.destroyed) {
          served.finished = true
          res.end()
        }
      }
      pump()
    })
    const resolver = new DidResolver({
      insecureHosts: [host],
      allowPrivate: [host],
      maxDocumentBytes: 64 * 1024,
    })
    const result = await resolver.resolve(didWebOf(host))
    assert.equal(result.error?.code, 'MESH_SIGNATURE_MISMATCH')
    assert.match(result.error?.message ?? '', /too large/)
    const read = result.error?.details.bytes as number
    assert.ok(read > 64 * 1024 && read <= 2 * 64 * 1024, `read ${read} bytes, one chunk past the cap at most`)
    await served.closed.promise
    assert.equal(served.finished, false, 'the server never got to send the whole body')
    assert.ok(served.written < TOTAL, `${served.written} of ${TOTAL} bytes left the server`)

    // A declared length past the cap is refused before any body is read.
    const declared = await webHost(t, (_req, res) => {
      res.writeHead(200, { 'content-length': String(TOTAL) })
      res.write(chunk)
    })
    const refused = await new DidResolver({
      insecureHosts: [declared.host],
      allowPrivate: true,
    }).resolve(didWebOf(declared.host))
    assert.equal(refused.error?.details.bytes, TOTAL)
  })

  it('gives up on a slow server at the deadline and closes the connection', async (t) => {
    const closed = deferred()
    const { host } = await webHost(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/did+json' })
      res.write('{')
      // One byte now and then, never the end (a slowloris in reverse).
      const drip = setInterval(() => res.write(' '), 50)
      res.on('close', () => {
        clearInterval(drip)
        closed.resolve()
      })
    })
    const resolver = new DidResolver({ insecureHosts: [host], allowPrivate: true, timeoutMs: 300 })
    const result = await resolver.resolve(didWebOf(host))
    assert.equal(result.error?.code, 'MESH_UNAVAILABLE')
    assert.match(result.error?.message ?? '', /timed out|cut short/)
    await closed.promise
  })

  it('remembers a failure: a second resolution sends nothing until the failure expires', async (t) => {
    const { host, seen } = await webHost(t, (_req, res) => res.writeHead(404).end())
    const clock = { now: 1_000_000 }
    const resolver = new DidResolver({
      insecureHosts: [host],
      allowPrivate: true,
      failureTtlMs: 60_000,
      now: () => clock.now,
    })
    const did = didWebOf(host, ['users', 'ghost'])
    const first = await resolver.resolve(did)
    assert.equal(first.error?.code, 'MESH_UNAVAILABLE')
    assert.equal(first.error?.details.status, 404)
    const second = await resolver.resolve(did)
    assert.deepEqual(second, first)
    assert.equal(seen.requests, 1, 'the failure was cached')
    clock.now += 60_001
    await resolver.resolve(did)
    assert.equal(seen.requests, 2, 'and retried once it expired')
  })

  it('keeps at most maxConcurrent resolutions in flight, one per did', async (t) => {
    const pending: ServerResponse[] = []
    const arrived = { count: 0, next: deferred(), hold: true }
    const { host, seen } = await webHost(t, (_req, res) => {
      if (!arrived.hold) return void res.writeHead(404).end()
      pending.push(res)
      arrived.count++
      arrived.next.resolve()
      arrived.next = deferred()
    })
    const resolver = new DidResolver({ insecureHosts: [host], allowPrivate: true, maxConcurrent: 2 })
    const a = resolver.resolve(didWebOf(host, ['a']))
    const again = resolver.resolve(didWebOf(host, ['a']))
    const b = resolver.resolve(didWebOf(host, ['b']))
    const c = await resolver.resolve(didWebOf(host, ['c']))
    assert.equal(c.error?.code, 'MESH_UNAVAILABLE')
    assert.equal(c.error?.details.reason, 'busy')
    while (arrived.count < 2) await arrived.next.promise
    arrived.hold = false
    for (const res of pending) res.writeHead(404).end()
    assert.equal((await a).error?.details.status, 404)
    assert.equal(await again, await a)
    assert.equal((await b).error?.details.status, 404)
    assert.equal(seen.requests, 2)
    // A refusal for load is not remembered: c is tried once there is room.
    const later = await resolver.resolve(didWebOf(host, ['c']))
    assert.equal(later.error?.details.reason, undefined)
    assert.equal(seen.requests, 3)
  })

  it('still resolves a legitimate did:web where allowed, and caches it', async (t) => {
    const web = new Ed25519KeyPair(Buffer.alloc(32, 21))
    let did = ''
    const { host, seen } = await webHost(t, (req, res) => {
      if (req.url !== '/partners/acme/did.json') return void res.writeHead(404).end()
      res
        .writeHead(200, { 'content-type': 'application/did+json' })
        .end(JSON.stringify(didWebDocument(did, [web.publicKey])))
    })
    did = didWebOf(host, ['partners', 'acme'])
    const resolver = new DidResolver({ insecureHosts: [host], allowPrivate: [host] })
    const resolved = await resolver.resolve(did)
    assert.equal(resolved.error, undefined, resolved.error?.message ?? '')
    assert.deepEqual(
      resolved.ok?.keys.map((k) => k.didKey),
      [web.did],
    )
    await resolver.resolve(did)
    assert.equal(seen.requests, 1)
  })

  it('the authority fetches a did:web (invoker, proof issuer, credential issuer) only once the cheap checks and the chain hold', async (t) => {
    const web = new Ed25519KeyPair(Buffer.alloc(32, 22))
    let did = ''
    const { host, seen } = await webHost(t, (_req, res) => {
      res
        .writeHead(200, { 'content-type': 'application/did+json' })
        .end(JSON.stringify(didWebDocument(did, [web.publicKey])))
    })
    did = didWebOf(host)
    const resolver = new DidResolver({ insecureHosts: [host], allowPrivate: [host] })
    const { authority, root } = await startMesh(t, { init: { resolver } })
    const post = { can: 'room/post', with: room() } as const
    const signer = ucantoSigner(web).withDID(did as API.DID) as never
    const asWeb = async (options: { audience?: string; exp?: number; proofs?: API.Proof[] } = {}) =>
      encodeToken(
        (await ucantoInvoke({
          issuer: signer,
          audience: { did: () => (options.audience ?? service.did) as API.DID },
          capability: post as never,
          proofs: options.proofs ?? [],
          expiration: options.exp ?? NOW_S + 600,
        }).delegate()) as never,
      )
    const verify = async (ucan: string) => authority.verifyAuthority({ ucan, ...post })

    const elsewhere = await verify(await asWeb({ audience: alice.did }))
    assert.equal(elsewhere.error?.details.reason, 'audience')
    const expired = await verify(await asWeb({ exp: NOW_S - 3600 }))
    assert.equal(expired.error?.details.reason, 'expired')
    const unchained = await verify(await asWeb())
    assert.equal(unchained.error?.proof, 'ucan')
    // A made-up proof "issued" by the did:web, leading nowhere: its issuer is not fetched either.
    const madeUp = (await ucantoDelegate({
      issuer: signer,
      audience: { did: () => mallory.did as API.DID },
      capabilities: [post] as never,
      expiration: NOW_S + 600,
    })) as API.Delegation
    const viaWeb = await verify(await invoke(mallory, post, [madeUp]))
    assert.equal(viaWeb.error?.proof, 'ucan')
    assert.equal(seen.connections, 0, 'no fetch for a request that fails without it')

    // A credential "issued" by the did:web, presented by a stranger with no chain.
    const vouch = await createVerifiableCredentialJwt(
      vcPayload(mallory.did, ['MeshVouchCredential'], { statement: 'trust me' }),
      { did, signer: jwtSigner(web), alg: 'EdDSA' },
    )
    const stranger = await authority.verifyAuthority({
      ucan: await invoke(mallory, post),
      ...post,
      credentials: [vouch],
    })
    assert.equal(stranger.error?.proof, 'ucan')
    assert.equal(seen.connections, 0, 'no fetch for a request that fails without it')

    // Granted by this mesh: the credential is checked (and its issuer fetched) after all.
    const toMallory = await delegate(alice, mallory.did, [post], [root])
    const granted = await authority.verifyAuthority({
      ucan: await invoke(mallory, post, [toMallory]),
      ...post,
      credentials: [vouch],
    })
    assert.equal(granted.error, undefined, granted.error?.message ?? '')
    assert.equal(seen.requests, 1)
    assert.ok(granted.ok?.credentials.some((c) => c.issuer === did))

    const toWeb = await delegate(alice, did, [post], [root])
    const good = await verify(await asWeb({ proofs: [toWeb] }))
    assert.equal(good.error, undefined, good.error?.message ?? '')
    assert.equal(good.ok?.issuer, did)
    assert.equal(seen.requests, 1, 'the document cached from the credential check')
  })

  it('POST /api/invoke with a did:web invoker on a loopback host: refused, nothing sent there (default node config)', async (t) => {
    const web = new Ed25519KeyPair(Buffer.alloc(32, 23))
    const { host, seen } = await webHost(t, (_req, res) => res.writeHead(404).end())
    const did = didWebOf(host, ['internal', 'admin'])
    const a = await startNode(t, 'alpha')
    const echo = { can: 'agent/invoke', with: agentResourceOf(a.node.did, 'echo'), nb: { ability: 'echo' } }
    // The chain holds (a partner promoted and granted), so only the resolution is left.
    const promote = await invocationToken(
      a.architect,
      a.node.did,
      { can: 'trust/promote', with: a.node.did, nb: { subject: did, tier: 3, reason: 'partner' } },
      [await rootOf(a)],
    )
    await a.api.put(`/api/trust/${encodeURIComponent(did)}`, { tier: 3, reason: 'partner', ucan: promote })
    const toWeb = await grant(a, did, echo)
    const ucan = await encodeToken(
      (await ucantoInvoke({
        issuer: ucantoSigner(web).withDID(did as API.DID) as never,
        audience: { did: () => a.node.did as API.DID },
        capability: { ...echo, nb: { ability: 'echo', input: 'hi' } } as never,
        proofs: [toWeb.view],
        expiration: Math.floor(Date.now() / 1000) + 600,
      }).delegate()) as never,
    )
    await assert.rejects(
      new HttpClient(a.node.httpUrl).post('/api/invoke', { ucan }),
      (err: { code: string; details: { proof?: string } }) => {
        assert.equal(err.code, 'MESH_FORBIDDEN', JSON.stringify(err))
        assert.equal(err.details.proof, 'did')
        return true
      },
    )
    assert.equal(seen.connections, 0, 'the node made no connection to the named host')
  })
})
