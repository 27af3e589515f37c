import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import { asCrypto, defaultCrypto, nodeCrypto } from '@chainsafe/libp2p-noise/crypto'

/**
 * Issue 15 (relay CPU): Noise messages below this many bytes are sealed and opened with
 * the WebAssembly ChaCha20-Poly1305 that @chainsafe/libp2p-noise ships, larger ones with
 * node:crypto, as Noise itself does below 1,200 bytes. node:crypto builds a cipher object
 * (key object, stream state) per message: cheap in a tight loop (≈ 7 µs at 1.4 KB) but,
 * at one frame a millisecond, ≈ 40 µs a frame more of process CPU than the WebAssembly
 * one measured between two processes (live room updates, 1–4 KB frames); from ≈ 16 KB
 * on (catch-up chunks) node:crypto is the cheaper again.
 */
export const WASM_CIPHER_BELOW_BYTES = 4096

/** Noise's default crypto, with the cipher chosen by size (same AEAD, same tags, same checks). */
export const meshNoiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt(plaintext, nonce, ad, k) {
    return plaintext.byteLength < WASM_CIPHER_BELOW_BYTES
      ? asCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
      : nodeCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
  },
  chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst) {
    return ciphertext.byteLength < WASM_CIPHER_BELOW_BYTES
      ? asCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
      : nodeCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
  },
}
