import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'

/** The mesh's private kad-dht: meshes never mix with the public IPFS DHT. */
export const MESH_KAD_PROTOCOL = '/mesh/kad/1.0.0'

/** The string whose sha256 is the directory key every mesh provides. */
export const MESH_DIRECTORY_NAME = 'mesh-directory/v1'

/**
 * The well-known directory: every mesh is a provider of this CID (raw codec,
 * sha256 of `mesh-directory/v1`), so `findProviders` enumerates meshes one has
 * never heard of; each provider's PeerId is its did:key.
 */
export const MESH_DIRECTORY_CID = CID.createV1(
  raw.code,
  Digest.create(sha256.code, createHash('sha256').update(MESH_DIRECTORY_NAME).digest()),
)

/**
 * Record fetch between DHT neighbours: a request is a DHT key, the answer the record
 * held under it (see NeighbourRecords).
 */
export const MESH_RECORD_PROTOCOL = '/mesh/record/1.0.0'
