// The DHT simulation behind `npm run bench -- simulation` (scripts/bench/dht-sim.ts): its
// routing tables, record placement and lookups must be Kademlia's, or its curves mean nothing.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runDhtSim, SimNetwork, seededRandom, simulateLookup } from '../../scripts/bench/dht-sim.ts'

const cpl = (a: bigint, b: bigint): number => {
  const x = a ^ b
  return x === 0n ? 256 : 256 - x.toString(2).length
}

test('routing tables hold at most k peers per common-prefix length, never the node itself', () => {
  const net = new SimNetwork(600, 8, seededRandom(1))
  for (const [self, table] of net.tables.entries()) {
    const perBucket = new Map<number, number>()
    for (const peer of table) {
      assert.notEqual(peer, self)
      const bucket = cpl(net.ids[self] as bigint, net.ids[peer] as bigint)
      perBucket.set(bucket, (perBucket.get(bucket) ?? 0) + 1)
    }
    for (const count of perBucket.values()) assert.ok(count <= 8)
    // Bucket 0 is half the network: a full bucket of 8.
    assert.equal(perBucket.get(0), 8)
  }
})

test('a record is held by the true k closest nodes to its key', () => {
  const random = seededRandom(2)
  const net = new SimNetwork(700, 20, random)
  for (let i = 0; i < 20; i++) {
    const key = (net.ids[Math.floor(random() * 700)] as bigint) ^ 0xabcdefn
    const brute = [...net.ids.keys()]
      .sort((a, b) => {
        const da = (net.ids[a] as bigint) ^ key
        const db = (net.ids[b] as bigint) ^ key
        return da < db ? -1 : da > db ? 1 : 0
      })
      .slice(0, 20)
    assert.deepEqual([...net.holders(key)].sort(), brute.sort())
  }
})

test('every lookup reaches a holder; hops never fewer than one, time at least one round trip', () => {
  const random = seededRandom(3)
  const net = new SimNetwork(2000, 20, random)
  for (let i = 0; i < 50; i++) {
    const key = BigInt(Math.floor(random() * 2 ** 52)) << 200n
    const holders = net.holders(key)
    const looker = [...net.ids.keys()].find((j) => !holders.has(j)) as number
    const found = simulateLookup(net, looker, key, holders, { alpha: 3, disjointPaths: 2, rttMs: 10, random })
    assert.ok(found, 'the lookup found the record')
    assert.ok(found.hops >= 1 && found.ms >= 5 && found.requests >= 1)
  }
})

test('hops grow with the network, far slower than it', () => {
  const small = runDhtSim(500, { lookups: 200, random: seededRandom(4) })
  const large = runDhtSim(20_000, { lookups: 200, random: seededRandom(5) })
  assert.equal(small.failed + large.failed, 0)
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
  assert.ok(mean(large.hops) > mean(small.hops), 'a larger network takes more hops')
  // 40× the meshes: hops grow by well under 40×, within log2 ratio (20 000 / 500 → 1.6× log2 N).
  assert.ok(mean(large.hops) / mean(small.hops) < 2 * (Math.log2(20_000) / Math.log2(500)))
  assert.ok(large.byNeighbour < small.byNeighbour, 'fewer lookups end at the looker’s own peers')
})
