/**
 * Identity: one Ed25519 seed is a principal's did:key, its signer and (for a mesh)
 * its libp2p PeerId. Humans' keys live in the keystore, never in a data dir.
 */
export {
  createKeyFile,
  HumanKeystore,
  type KeyFile,
  MESH_KEY_FILE,
  readKeyFile,
  writeKeyFile,
} from './key-file.ts'
export {
  KEY_HISTORY_FILE,
  type KeyHistoryFile,
  loadKeyHistory,
  MESH_KEYS_DIR,
  type MeshKeyHistory,
  readRetiredKey,
  rotateMeshKey,
} from './key-history.ts'
export { didFromPublicKey, Ed25519KeyPair, isDidKey, publicKeyFromDid, verifySignature } from './keys.ts'
export { parseTarget } from './mesh-target.ts'
export { didFromPeerId, peerIdFromDid } from './peer-id.ts'
export {
  createRotationRecord,
  extendKnownKeys,
  KEY_ROTATION_TYPE,
  MAX_ROTATION_CHAIN,
  type RotationRecord,
  type RotationRecordContent,
  rotationChainSchema,
  rotationRecordSchema,
  type VerifiedChain,
  verifyRotationChain,
  verifyRotationRecord,
} from './rotation.ts'
export { canonicalBytes, canonicalJson, signCanonical, verifyBytes, verifyCanonical } from './signed-json.ts'
// seals verified on a thread of their own (issue 15, verify15)
export { type SharedCheck, type SharedChecks, shareChecks } from './verify-thread.ts'
