/**
 * The key file format (`mesh key new`, `mesh init`, and the console's "new key"): what
 * a key file holds is the seed, never anything derived that could disagree with it.
 * The node reads and writes these files on disk (identity/key-file.ts); the console
 * reads and offers them for download in the browser.
 */
export interface KeyFile {
  version: 1
  type: 'Ed25519'
  /** 'mesh' for a node's own key (data dir); 'human' for a keystore entry. */
  role: 'mesh' | 'human'
  name: string
  /** The 32-byte seed, base64url. */
  seed: string
  did: string
  createdAt: string
}

/** The key file for a seed (base64url) and the did it makes, dated now. */
export function keyFileOf(role: KeyFile['role'], name: string, seed: string, did: string): KeyFile {
  return { version: 1, type: 'Ed25519', role, name, seed, did, createdAt: new Date().toISOString() }
}

/** Whether parsed JSON is in a format this code reads (version 1, Ed25519, a seed). */
export function isKnownKeyFormat(
  file: Partial<KeyFile>,
): file is Partial<KeyFile> & Pick<KeyFile, 'version' | 'type' | 'seed'> {
  return file.version === 1 && file.type === 'Ed25519' && typeof file.seed === 'string'
}
