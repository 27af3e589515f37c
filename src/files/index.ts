/** Files in rooms (issue 18, SPEC §13): the blob store, `/mesh/files/1.0.0`, the service. */
export { BlobStore, type BlobStoreInit, FILE_DEFAULTS, type StoredBlob } from './blob-store.ts'
export { cidOf, isFileCid } from './cid.ts'
export {
  type FetchComponents,
  FILE_PROTOCOL_LIMITS,
  FILES_PROTOCOL,
  FileServer,
  type FileServerComponents,
  fetchFromPeer,
} from './file-protocol.ts'
export { type FileRef, type FileRooms, FileService, type FileStats } from './file-service.ts'
