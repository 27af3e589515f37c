import type { AbortOptions, Connection, Stream } from '@libp2p/interface'
import {
  type AuditLog,
  type ConsistencyProof,
  checkConsistencyProof,
  checkInclusionProof,
  type DefectionRecord,
  type HeadBook,
  type InclusionProof,
  parseTreeHead,
  type RejectedLog,
  type SignedTreeHead,
} from '../audit/index.ts'
import { MeshError, ProofInvalidError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { MeshLibp2p } from '../p2p/index.ts'
import { lazyValidator } from '../schema.ts'
import { serveExchange } from './connect-protocol.ts'
import type { PeerView } from './connection-book.ts'
import {
  admitKey,
  admitPeer,
  askPeer,
  connectedPeer,
  encodeJson,
  errorAnswer,
  isConnected,
  type PeerAnswer,
  type PeerRefusals,
  type ProtocolHandler,
  parseJson,
  peerProtocolParts,
  perMinute,
  type RequestsOverHttp,
} from './peer-request.ts'
import type { RateLimiter } from './rate-limiter.ts'

/**
 * `/mesh/audit/1.0.0` — a connected peer mesh reads what it needs of this mesh's Merkle
 * audit log (SPEC §11). One stream per request, varint length-prefixed UTF-8 JSON:
 *
 * ```
 * → {"op":"head"}                               ← {"ok": signed tree head}
 * → {"op":"consistency","from":m,"to":n}        ← {"ok": consistency proof m → n}
 * → {"op":"rows","after":seq,"limit":k}         ← {"ok": {"head", "proofs", "next"}}
 *                                    or, to any ← {"error": {"code","message","details"}}
 * ```
 *
 * `rows` are the rows the asking mesh is party to (audit/party-rows.ts), each with its
 * inclusion proof in the log of `head.size` rows. Only a peer with an accepted
 * connection, asking with its current key, is answered (else MESH_NOT_CONNECTED or
 * MESH_SIGNATURE_MISMATCH before anything is read); at most `requestsPerMinute` a peer
 * (MESH_RATE_LIMITED); requests over MAX_AUDIT_REQUEST_BYTES abort the stream; answers
 * are read up to `maxAnswerBytes`. The asking side checks everything it gets: the head's
 * signature by a key of the peer (its rotation chain as the peer book holds it), and
 * every proof against that head — a failure is the code the check gives
 * (MESH_SIGNATURE_MISMATCH, MESH_PROOF_INVALID), never a silent pass.
 */
export const MESH_AUDIT_PROTOCOL = '/mesh/audit/1.0.0'
/** A request's limit: 32 heads passed on (~450 bytes each), or one equivocation proof. */
export const MAX_AUDIT_REQUEST_BYTES = 32 * 1024
/** Heads sent in one exchange: this mesh's own and up to 31 held of others. */
export const MAX_GOSSIP_HEADS = 32
/** Rotation chains sent with them (for rotated meshes the receiver may not know), at most this much JSON. */
export const MAX_GOSSIP_CHAIN_BYTES = 12 * 1024

export interface AuditProtocolComponents {
  libp2p: () => MeshLibp2p
  peers: () => Promise<PeerView[]>
  audit: Pick<AuditLog, 'treeHead' | 'consistencyProof' | 'partyProofs'>
  /** The heads held of other meshes and the defections found; without it, heads and proofs are neither taken nor passed on. */
  heads?: Pick<HeadBook, 'heads' | 'take' | 'takeProof' | 'defections' | 'chainOf'>
  rejected?: Pick<RejectedLog, 'record'>
  /** Reputation hook: a connected peer sent a malformed request or flooded. Must not throw. */
  onPeerRefused?: (peer: string, reason: string) => void
  logger: Logger
}

export interface AuditProtocolInit {
  /** Requests a peer may send per minute (token bucket, burst the same); default 120. */
  requestsPerMinute?: number
  /** Inbound streams at once per connection; default 4. */
  maxInboundStreams?: number
  /** The whole exchange, either side; default 10 000 ms. */
  timeoutMs?: number
  /** Largest answer read; default 512 KiB (16 rows of 8 KiB details with their proofs). */
  maxAnswerBytes?: number
  /** Heads are exchanged with every connected peer this often; 0 = only when `gossip()` is called. Default 15 000 ms. */
  gossipIntervalMs?: number
}

const POSITION = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const
const requestSchema = {
  oneOf: [
    { type: 'object', additionalProperties: false, required: ['op'], properties: { op: { const: 'head' } } },
    {
      type: 'object',
      additionalProperties: false,
      required: ['op', 'from'],
      properties: { op: { const: 'consistency' }, from: POSITION, to: POSITION },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['op', 'heads'],
      properties: {
        op: { const: 'heads' },
        heads: { type: 'array', maxItems: MAX_GOSSIP_HEADS },
        chains: { type: 'object', maxProperties: MAX_GOSSIP_HEADS },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['op', 'proof'],
      properties: { op: { const: 'defection' }, proof: { type: 'object' } },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['op', 'after'],
      properties: {
        op: { const: 'rows' },
        after: POSITION,
        limit: { type: 'integer', minimum: 1, maximum: 16 },
      },
    },
  ],
} as const
type Request =
  | { op: 'head' }
  | { op: 'consistency'; from: number; to?: number }
  | { op: 'rows'; after: number; limit?: number }
  | { op: 'heads'; heads: unknown[]; chains?: Record<string, unknown> }
  | { op: 'defection'; proof: unknown }

const validRequest = lazyValidator<Request>(requestSchema)

/** The rows a peer is party to, checked: the head they were proven against, and where to go on. */
export interface PeerRows {
  head: SignedTreeHead
  proofs: InclusionProof[]
  next: number | null
}

export class AuditProtocol {
  readonly #c: AuditProtocolComponents
  readonly #init: Required<AuditProtocolInit>
  readonly #limiter: RateLimiter
  readonly #refusals: PeerRefusals
  readonly #handler: ProtocolHandler
  readonly #log: Logger
  #timer: ReturnType<typeof setInterval> | undefined
  /** `<peer> <offender>`: defections a peer has taken (this run), so each is sent once. */
  readonly #told = new Set<string>()
  #http: RequestsOverHttp | undefined

  constructor(components: AuditProtocolComponents, init: AuditProtocolInit = {}) {
    this.#c = components
    this.#init = {
      requestsPerMinute: init.requestsPerMinute ?? 120,
      maxInboundStreams: init.maxInboundStreams ?? 4,
      timeoutMs: init.timeoutMs ?? 10_000,
      maxAnswerBytes: init.maxAnswerBytes ?? 512 * 1024,
      gossipIntervalMs: init.gossipIntervalMs ?? 15_000,
    }
    this.#limiter = perMinute(this.#init.requestsPerMinute)
    const parts = peerProtocolParts(components, {
      protocol: MESH_AUDIT_PROTOCOL,
      kind: 'audit.request',
      component: 'audit-protocol',
      maxInboundStreams: this.#init.maxInboundStreams,
      serve: (stream, connection) => this.#serve(stream, connection),
    })
    this.#log = parts.log
    this.#refusals = parts.refusals
    this.#handler = parts.handler
  }

  async start(): Promise<void> {
    if (this.#handler.running) return
    await this.#handler.start()
    if (this.#init.gossipIntervalMs > 0 && this.#c.heads !== undefined) {
      this.#timer = setInterval(() => void this.gossip(), this.#init.gossipIntervalMs)
      this.#timer.unref()
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#handler.stop()
  }

  /** The connected peer `mesh`'s signed tree head now, its signature checked against the peer's keys. */
  async head(mesh: string, options: AbortOptions = {}): Promise<SignedTreeHead> {
    const peer = await this.#peer(mesh)
    return headOf(peer, await this.#ask(peer, { op: 'head' }, options))
  }

  /**
   * The proof that `newer` extends `older` (two heads of the peer `mesh`, checked), from
   * the peer, checked: MESH_PROOF_INVALID when it does not hold.
   */
  async consistency(
    mesh: string,
    older: SignedTreeHead,
    newer: SignedTreeHead,
    options: AbortOptions = {},
  ): Promise<ConsistencyProof> {
    const peer = await this.#peer(mesh)
    const answer = await this.#ask(peer, { op: 'consistency', from: older.size, to: newer.size }, options)
    return checkConsistencyProof(answer, older, newer)
  }

  /** The rows of the peer's log this mesh is party to, after `after`, each proof checked against the head it came with. */
  async rows(mesh: string, after = 0, options: AbortOptions = {}): Promise<PeerRows> {
    const peer = await this.#peer(mesh)
    const answer = (await this.#ask(peer, { op: 'rows', after }, options)) as Partial<PeerRows> | null
    if (typeof answer !== 'object' || answer === null || !Array.isArray(answer.proofs)) {
      throw new ProofInvalidError('the peer’s rows answer is not one', { reason: 'shape', mesh: peer.did })
    }
    const head = headOf(peer, answer.head)
    const proofs = answer.proofs.map((proof) => checkInclusionProof(proof, head))
    const next = Number.isSafeInteger(answer.next) ? (answer.next as number) : null
    return { head, proofs, next }
  }

  /**
   * One gossip round: with every connected peer, this mesh's head and those it holds go
   * out, the peer's come back, and each is taken (checked, held, or found an
   * equivocation). Returns the peers that answered.
   */
  async gossip(options: AbortOptions = {}): Promise<string[]> {
    const book = this.#c.heads
    if (book === undefined) return []
    const peers = (await this.#c.peers()).filter(isConnected)
    const answered: string[] = []
    for (const peer of peers) {
      try {
        const answer = (await this.#ask(peer, { op: 'heads', ...(await this.#outgoing(book)) }, options)) as {
          heads?: unknown
          chains?: unknown
        }
        answered.push(peer.did)
        await this.#takeAll(Array.isArray(answer?.heads) ? answer.heads : [], peer.did, answer?.chains)
        // A peer linked after a defection was found learns it on its first round.
        for (const record of await book.defections()) await this.#tell(peer, record, options)
      } catch (err) {
        this.#log.debug({ event: 'audit.gossip_failed', peer: peer.did, err }, 'head exchange failed')
      }
    }
    return answered
  }

  /** The consistency proof from `from` to `mesh`'s head now, as `mesh` answers it (unchecked: the head book checks). */
  async askConsistency(mesh: string, from: number, options: AbortOptions = {}): Promise<ConsistencyProof> {
    const peer = await this.#peer(mesh)
    return (await this.#ask(peer, { op: 'consistency', from }, options)) as ConsistencyProof
  }

  /** Sends a defection to every connected peer but the offender and whoever sent it; returns those that took it. */
  async forward(record: DefectionRecord, options: AbortOptions = {}): Promise<string[]> {
    const from = record.source.startsWith('peer:') ? record.source.slice(5) : undefined
    const took: string[] = []
    for (const peer of (await this.#c.peers()).filter(isConnected)) {
      if (peer.did === from) continue
      if (await this.#tell(peer, record, options)) took.push(peer.did)
    }
    return took
  }

  /** Sends `record` to `peer` unless it is the offender or already took it; true when it takes it now. */
  async #tell(peer: PeerView, record: DefectionRecord, options: AbortOptions): Promise<boolean> {
    const key = `${peer.did} ${record.mesh}`
    if (peer.did === record.mesh || this.#told.has(key)) return false
    try {
      await this.#ask(peer, { op: 'defection', proof: record.proof }, options)
      this.#told.add(key)
      return true
    } catch (err) {
      this.#log.warn({ event: 'audit.defection_forward_failed', peer: peer.did, err }, 'forwarding failed')
      return false
    }
  }

  /** This mesh's head and those held, with the rotation chains of rotated meshes (within MAX_GOSSIP_CHAIN_BYTES). */
  async #outgoing(
    book: NonNullable<AuditProtocolComponents['heads']>,
  ): Promise<{ heads: unknown[]; chains: Record<string, unknown> }> {
    const heads = [this.#c.audit.treeHead(), ...(await book.heads(MAX_GOSSIP_HEADS - 1))]
    const chains: Record<string, unknown> = {}
    let budget = MAX_GOSSIP_CHAIN_BYTES
    for (const head of heads.slice(1)) {
      if (head.key === head.mesh) continue
      const chain = await book.chainOf(head.mesh)
      const size = chain === undefined ? 0 : JSON.stringify(chain).length
      if (chain === undefined || size > budget) continue
      chains[head.mesh] = chain
      budget -= size
    }
    return { heads, chains }
  }

  async #takeAll(heads: unknown[], from: string, chains?: unknown): Promise<void> {
    const book = this.#c.heads
    if (book === undefined) return
    const chainOf = (mesh: unknown): unknown =>
      typeof chains === 'object' && chains !== null && typeof mesh === 'string'
        ? (chains as Record<string, unknown>)[mesh]
        : undefined
    for (const [i, head] of heads.slice(0, MAX_GOSSIP_HEADS).entries()) {
      try {
        const mesh = (head as { mesh?: unknown } | null)?.mesh
        // The first head is the sender's own, signed for this exchange: it must not be a replay.
        const fresh = i === 0 && mesh === from
        await book.take(head, { fresh, chain: chainOf(mesh) })
      } catch (err) {
        // A forged head passed on: refused (its code), the rest still taken.
        this.#log.warn(
          { event: 'audit.head_refused', from, code: (err as MeshError).code, err: (err as Error).message },
          'a tree head was refused',
        )
      }
    }
  }

  #peer(mesh: string): Promise<PeerView> {
    return connectedPeer(this.#c.peers, mesh)
  }

  #ask(peer: PeerView, request: Request, options: AbortOptions): Promise<unknown> {
    return askPeer(this.#c.libp2p(), this.#http, peer, MESH_AUDIT_PROTOCOL, request, {
      timeoutMs: this.#init.timeoutMs,
      maxAnswerBytes: this.#init.maxAnswerBytes,
      signal: options.signal,
    })
  }

  /** Carries requests to a peer libp2p cannot reach over its HTTP face (SPEC §12, http-requests.ts). */
  setHttp(http: RequestsOverHttp | undefined): void {
    this.#http = http
  }

  /** Whether the peer mesh whose current key is `key` may ask now; a refusal is recorded and returned. */
  async admit(key: string): Promise<{ peer: string; view?: PeerView; error?: MeshError }> {
    const admitted = await admitKey(key, this.#c.peers, this.#limiter)
    if (admitted.error !== undefined) await this.#record(admitted.peer, admitted.error)
    return admitted
  }

  /** Answers one admitted peer's request, as over libp2p. */
  async run(admitted: { peer: string; view?: PeerView }, request: unknown): Promise<PeerAnswer> {
    const peerDid = admitted.peer
    if (admitted.view === undefined) {
      return this.#refused(peerDid, new MeshError('MESH_NOT_CONNECTED', 'not connected'))
    }
    if (!validRequest(request)) {
      return this.#refused(
        peerDid,
        new MeshError('MESH_BAD_REQUEST', 'not an audit request', {
          validation: validRequest.errors?.[0]?.message ?? 'not JSON',
        }),
      )
    }
    try {
      return { ok: await this.#answer(request, admitted.view) }
    } catch (err) {
      if (err instanceof MeshError) return this.#refused(peerDid, err)
      this.#log.error({ event: 'audit.protocol_failed', peer: peerDid, err }, 'audit request failed')
      return errorAnswer(err, 'the audit request failed')
    }
  }

  /** Records a refusal of a request that never reached `admit` (over HTTP: forged, replayed, oversized). */
  refused(peer: string, err: MeshError): Promise<void> {
    return this.#record(peer, err)
  }

  async #refused(peer: string, err: MeshError): Promise<PeerAnswer> {
    await this.#record(peer, err)
    return errorAnswer(err)
  }

  /** Answers one inbound stream (what `start` registers; a host that routes streams itself calls it). */
  serve(stream: Stream, connection: Connection): Promise<void> {
    return this.#handler.serve(stream, connection)
  }

  async #serve(stream: Stream, connection: Connection): Promise<void> {
    let peerDid = 'unknown'
    await serveExchange(
      stream,
      connection,
      async (bytes) => {
        const admitted = await admitPeer(connection, this.#c.peers, this.#limiter)
        peerDid = admitted.peer
        if (admitted.error !== undefined || admitted.view === undefined) {
          return this.#refuse(peerDid, admitted.error ?? new MeshError('MESH_NOT_CONNECTED', 'not connected'))
        }
        return encodeJson(await this.run(admitted, parseJson(bytes)))
      },
      {
        maxBytes: MAX_AUDIT_REQUEST_BYTES,
        signal: AbortSignal.timeout(this.#init.timeoutMs),
        onError: (err) => {
          if ((err as Error).name === 'InvalidDataLengthError') {
            void this.#record(
              peerDid,
              new MeshError('MESH_TOO_LARGE', `an audit request is at most ${MAX_AUDIT_REQUEST_BYTES} bytes`),
            )
          }
        },
      },
    )
  }

  async #answer(request: Request, peer: PeerView): Promise<unknown> {
    const audit = this.#c.audit
    if (request.op === 'head') return audit.treeHead()
    if (request.op === 'consistency') return audit.consistencyProof(request.from, request.to)
    if (request.op === 'heads') {
      const book = this.#c.heads
      if (book === undefined) return { heads: [audit.treeHead()] }
      // Taken after the answer: checking a head may ask its mesh, which takes time.
      setImmediate(() => void this.#takeAll(request.heads, peer.did, request.chains))
      return this.#outgoing(book)
    }
    if (request.op === 'defection') {
      const book = this.#c.heads
      if (book === undefined) throw new MeshError('MESH_UNAVAILABLE', 'this mesh does not take defections')
      return { result: await book.takeProof(request.proof, `peer:${peer.did}`) }
    }
    const { head, proofs, next } = await audit.partyProofs([peer.did, ...peer.keys], {
      after: request.after,
      ...(request.limit !== undefined ? { limit: request.limit } : {}),
    })
    return { head, proofs, next }
  }

  async #refuse(peer: string, err: MeshError): Promise<Uint8Array> {
    await this.#record(peer, err)
    return encodeJson(errorAnswer(err))
  }

  async #record(peer: string, err: MeshError): Promise<void> {
    // A position past the log is an ordinary answer, not misbehaviour.
    if (err.code !== 'MESH_NOT_FOUND') await this.#refusals.record(peer, err)
  }
}

/** A head from `peer`: signed by one of its keys and of its log, or refused with the check's code. */
function headOf(peer: PeerView, value: unknown): SignedTreeHead {
  const head = parseTreeHead(value, [peer.did, ...peer.keys])
  if (head.mesh !== peer.did) {
    throw new ProofInvalidError('the head is of another mesh’s log', { reason: 'mesh', mesh: head.mesh })
  }
  return head
}
