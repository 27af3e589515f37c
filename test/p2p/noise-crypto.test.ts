import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { nodeCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { meshNoiseCrypto, WASM_CIPHER_BELOW_BYTES } from '../../src/p2p/noise-crypto.ts'

const SIZES = [
  0,
  1,
  1199,
  1200,
  WASM_CIPHER_BELOW_BYTES - 17,
  WASM_CIPHER_BELOW_BYTES - 16,
  WASM_CIPHER_BELOW_BYTES - 1,
  WASM_CIPHER_BELOW_BYTES,
  20_000,
  65_519,
]
const bytes = (data: Uint8Array | Uint8ArrayList): Uint8Array => data.subarray()

describe('Noise cipher chosen by size (issue 15: relay CPU)', () => {
  it('seals and opens as stock Noise does, both ways, at every size around the thresholds', () => {
    const k = randomBytes(32)
    const ad = randomBytes(32)
    for (const [i, size] of SIZES.entries()) {
      const nonce = new Uint8Array(12)
      nonce[4] = i
      const plaintext = randomBytes(size)
      const ours = bytes(meshNoiseCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k))
      const stock = bytes(nodeCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k))
      assert.deepEqual(Buffer.from(ours), Buffer.from(stock), `ciphertext of ${size} bytes`)
      assert.deepEqual(Buffer.from(bytes(nodeCrypto.chaCha20Poly1305Decrypt(ours, nonce, ad, k))), plaintext)
      assert.deepEqual(
        Buffer.from(bytes(meshNoiseCrypto.chaCha20Poly1305Decrypt(Uint8Array.from(stock), nonce, ad, k))),
        plaintext,
      )
      // Opened in place, as Noise opens a message (its plaintext written over its ciphertext).
      const inPlace = Uint8Array.from(stock)
      const opened = meshNoiseCrypto.chaCha20Poly1305Decrypt(inPlace, nonce, ad, k, inPlace.subarray(0, size))
      assert.deepEqual(Buffer.from(bytes(opened)), plaintext)
      // A list, as Noise hands a yamux frame's header and body.
      const list = new Uint8ArrayList(plaintext.subarray(0, 12), plaintext.subarray(12))
      assert.deepEqual(
        Buffer.from(bytes(meshNoiseCrypto.chaCha20Poly1305Encrypt(list, nonce, ad, k))),
        Buffer.from(stock),
      )
    }
  })

  it('refuses a tampered ciphertext, a wrong nonce, a wrong key or associated data, on either side of the threshold', () => {
    const k = randomBytes(32)
    const ad = randomBytes(32)
    const nonce = new Uint8Array(12)
    for (const size of [100, 2000, WASM_CIPHER_BELOW_BYTES + 100]) {
      const sealed = bytes(meshNoiseCrypto.chaCha20Poly1305Encrypt(randomBytes(size), nonce, ad, k))
      const open = (c: Uint8Array, n = nonce, a: Uint8Array = ad, key: Uint8Array = k) =>
        meshNoiseCrypto.chaCha20Poly1305Decrypt(Uint8Array.from(c), n, a, key)
      const tampered = Uint8Array.from(sealed)
      tampered[Math.floor(size / 2)] = (tampered[Math.floor(size / 2)] as number) ^ 1
      assert.throws(() => open(tampered), `tampered, ${size} bytes`)
      const tag = Uint8Array.from(sealed)
      tag[tag.length - 1] = (tag[tag.length - 1] as number) ^ 1
      assert.throws(() => open(tag), `tag, ${size} bytes`)
      const otherNonce = new Uint8Array(12)
      otherNonce[0] = 1
      assert.throws(() => open(sealed, otherNonce), `nonce, ${size} bytes`)
      assert.throws(() => open(sealed, nonce, randomBytes(32)), `ad, ${size} bytes`)
      assert.throws(() => open(sealed, nonce, ad, randomBytes(32)), `key, ${size} bytes`)
      assert.equal(bytes(open(sealed)).byteLength, size)
    }
  })
})
