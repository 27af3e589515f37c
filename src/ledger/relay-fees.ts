import type { Connection, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import type { LedgerBeneficiaryView, LedgerRelayView, LedgerView } from '../api/index.ts'
import { didFromPeerId, type Ed25519KeyPair, peerIdFromDid } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import type { MeshLibp2p, RelayMeter } from '../p2p/index.ts'
import type { LedgerBook, StoredCount } from './ledger-book.ts'
import {
  checkNext,
  type Receipt,
  type ReceiptProblem,
  type ReceiptProblemCode,
  signReceipt,
  verifyLedger,
} from './receipts.ts'
import { RelayCarry } from './relay-carry.ts'

/** Coordination fees (SPEC §10): receipts travel from the beneficiary to the relay on this protocol. */
export const MESH_RECEIPTS_PROTOCOL = '/mesh/receipts/1.0.0'
/** A receipt is ~400 bytes of JSON; anything much larger is not one. */
export const MAX_RECEIPT_MESSAGE_BYTES = 2048
/** How far ahead of the relay's clock a receipt's `to` may be. */
export const RECEIPT_MAX_SKEW_MS = 60_000

export interface RelayFeesInit {
  /**
   * As a relay: bytes a beneficiary may leave unreceipted (measured here since start, not
   * covered by receipts taken since start) before it is cut off; default 8 MiB.
   */
  freeBytes?: number
  /** As a beneficiary: sign a receipt once this many bytes are pending; default 1 MiB. */
  receiptBytes?: number
  /** As a beneficiary: and at least this often while any are pending; default 2000 ms. */
  receiptIntervalMs?: number
  /** As a beneficiary: sign receipts at all (`false`: a mesh that refuses to); default true. */
  signReceipts?: boolean
  /**
   * As a relay: how much more than it measured a beneficiary may claim (chunks in flight):
   * this many bytes plus 1%; default 64 KiB. (No allowance per circuit: requests reuse
   * the open circuit, so resets are few — circuit churn, SPEC §10.)
   */
  slackBytes?: number
  /**
   * As a relay: how long a beneficiary past `freeBytes` may go without a receipt taken
   * before it is cut off (its receipts may be in flight); default 10 000 ms.
   */
  graceMs?: number
  /**
   * As a relay: unreceipted bytes past which it is cut off at once, signing or not (receipts
   * for much less than it uses); default 4 × freeBytes, at least 64 MiB (what a loopback
   * circuit moves while a receipt makes its round trip).
   */
  maxDebtBytes?: number
}

export const RELAY_FEES_DEFAULTS: Required<RelayFeesInit> = {
  freeBytes: 8 * 1024 * 1024,
  receiptBytes: 1024 * 1024,
  receiptIntervalMs: 2000,
  signReceipts: true,
  slackBytes: 64 * 1024,
  graceMs: 10_000,
  maxDebtBytes: 0,
}

export interface RelayFeesComponents {
  libp2p: () => MeshLibp2p
  key: () => Ed25519KeyPair
  book: LedgerBook
  logger: Logger
}

type Answer =
  | { ok: { seq: number; receipts: number; bytes: number } }
  | { error: { code: string; message: string; details: Record<string, unknown> } }

/** What this mesh, as a beneficiary, stands at with one relay (keyed by the relay's peer id). */
interface SentState {
  /** The meter's count when the last receipt was signed (this host's life). */
  bytes: number
  messages: number
  meter: RelayMeter
  inFlight: boolean
  lastError: string | null
}

/**
 * Both sides of coordination fees (SPEC §10):
 *
 * - **Beneficiary**: for each relay whose circuits carried its traffic, signs a receipt
 *   for what is pending (counted by the host's RelayMeter) once `receiptBytes` are
 *   pending or every `receiptIntervalMs`, and sends it over `/mesh/receipts/1.0.0`. The
 *   chain head is kept in the store, so seq and intervals continue across restarts. A
 *   refused receipt's interval is dropped (the relay answers with its chain head, which
 *   this side takes).
 * - **Relay**: takes a receipt only from its beneficiary's own connection, for this relay,
 *   signed, next in seq, contiguous, not in the future and claiming no more than it
 *   measured (MESH_BAD_REQUEST, MESH_FORBIDDEN, MESH_RECEIPT_INVALID,
 *   MESH_SIGNATURE_MISMATCH, MESH_REPLAY, MESH_CLOCK_SKEW); a refusal carries the chain's
 *   head (`details.lastSeq`, `lastTo`). A beneficiary whose unreceipted bytes pass `freeBytes` is cut
 *   off (MESH_RECEIPTS_REQUIRED): circuits closed, reservation ended, no new one.
 */
export class RelayFees {
  readonly #components: RelayFeesComponents
  readonly #init: Required<RelayFeesInit>
  readonly #sent = new Map<string, SentState>()
  /** As a relay: bytes receipted since this host started, and refusals, by beneficiary peer id. */
  readonly #receipted = new Map<string, { meter: RelayMeter; bytes: number }>()
  readonly #refused = new Map<string, number>()
  /** As a relay: when each beneficiary last had a receipt taken, and first went past the allowance. */
  readonly #lastTaken = new Map<string, number>()
  readonly #overSince = new Map<string, number>()
  #timer: ReturnType<typeof setInterval> | undefined
  #sweep: ReturnType<typeof setInterval> | undefined
  #meter: RelayMeter | undefined
  /** As a relay: cut-offs and counts kept across restarts (SPEC §10). */
  readonly #carry: RelayCarry

  constructor(components: RelayFeesComponents, init: RelayFeesInit = {}) {
    this.#components = components
    this.#carry = new RelayCarry(components.book.relayState)
    this.#init = { ...RELAY_FEES_DEFAULTS, ...init }
    if (this.#init.maxDebtBytes <= 0)
      this.#init.maxDebtBytes = Math.max(4 * this.#init.freeBytes, 64 * 1024 * 1024)
  }

  readonly [Symbol.toStringTag] = 'mesh/relay-fees'

  get signing(): boolean {
    return this.#init.signReceipts
  }

  async start(): Promise<void> {
    const libp2p = this.#components.libp2p()
    const meter = libp2p.services.relayMeter
    this.#meter = meter
    if (libp2p.services.relay !== undefined) {
      await libp2p.handle(MESH_RECEIPTS_PROTOCOL, (stream, connection) => this.#serve(stream, connection), {
        maxInboundStreams: 4,
      })
      await this.#carry.load(meter, (peer) => this.#current(meter, peer))
      meter.onServed = (peer) => this.#checkAllowance(meter, peer)
      this.#sweep = setInterval(() => {
        for (const [peer] of meter.servedAll()) this.#checkAllowance(meter, peer)
        this.#saveCounts(meter).catch(() => undefined)
      }, 1000)
      this.#sweep.unref?.()
    }
    if (this.#init.signReceipts) {
      meter.onRelayed = (relay) => {
        if (this.#pending(meter, relay).bytes >= this.#init.receiptBytes) this.#sendSoon(meter, relay)
      }
      this.#timer = setInterval(() => {
        for (const [relay] of meter.relayedAll()) {
          if (this.#pending(meter, relay).bytes > 0) this.#sendSoon(meter, relay)
        }
      }, this.#init.receiptIntervalMs)
      this.#timer.unref?.()
    }
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    if (this.#sweep !== undefined) clearInterval(this.#sweep)
    this.#timer = undefined
    this.#sweep = undefined
    const meter = this.#meter
    if (meter?.relay !== undefined) await this.#saveCounts(meter).catch(() => undefined)
    if (meter !== undefined) {
      meter.onServed = undefined
      meter.onRelayed = undefined
    }
    await this.#components
      .libp2p()
      .unhandle(MESH_RECEIPTS_PROTOCOL)
      .catch(() => undefined)
  }

  /** Signs and sends a receipt for what is pending with `relay` (a peer id) now; resolves with the relay's answer. */
  async sendNow(relay: string): Promise<Answer | undefined> {
    const meter = this.#components.libp2p().services.relayMeter
    return this.#send(meter, relay)
  }

  // ---- beneficiary ----

  #state(meter: RelayMeter, relay: string): SentState {
    let state = this.#sent.get(relay)
    if (state === undefined || state.meter !== meter) {
      // A new host (key rotation) counts from zero again.
      state = { bytes: 0, messages: 0, meter, inFlight: false, lastError: state?.lastError ?? null }
      this.#sent.set(relay, state)
    }
    return state
  }

  #pending(meter: RelayMeter, relay: string): { bytes: number; messages: number } {
    const count = meter.relayed(relay)
    const state = this.#state(meter, relay)
    return { bytes: (count?.bytes ?? 0) - state.bytes, messages: (count?.messages ?? 0) - state.messages }
  }

  #sendSoon(meter: RelayMeter, relay: string): void {
    if (this.#state(meter, relay).inFlight) return
    this.#send(meter, relay).catch((err: unknown) =>
      this.#components.logger.debug({ event: 'ledger.receipt_send_failed', relay, err }, 'receipt not sent'),
    )
  }

  async #send(meter: RelayMeter, relay: string): Promise<Answer | undefined> {
    const state = this.#state(meter, relay)
    if (state.inFlight) return undefined
    state.inFlight = true
    let answered = false
    try {
      const count = meter.relayed(relay)
      if (count === undefined) return undefined
      const snapshot = { bytes: count.bytes, messages: count.messages }
      const { book, key } = this.#components
      const relayDid = didFromPeerId(relay)
      const head = await book.sentHead(relayDid)
      const from = head?.to ?? count.since
      const receipt = signReceipt(key(), {
        relay: relayDid,
        beneficiary: key().did,
        bytes: snapshot.bytes - state.bytes,
        messages: snapshot.messages - state.messages,
        from,
        to: Math.max(Date.now(), from),
        seq: (head?.seq ?? 0) + 1,
      })
      const answer = await this.#exchange(relay, receipt)
      answered = true
      // Taken or refused, this interval is done with: a refused one is not sent again.
      state.bytes = snapshot.bytes
      state.messages = snapshot.messages
      if ('ok' in answer) {
        state.lastError = null
        await book.setSentHead(relayDid, {
          seq: receipt.seq,
          to: receipt.to,
          receipts: (head?.receipts ?? 0) + 1,
          bytes: (head?.bytes ?? 0) + receipt.bytes,
        })
      } else {
        state.lastError = answer.error.code
        // The relay's head, when it has another: the next receipt follows it.
        const theirs = answer.error.details as { lastSeq?: unknown; lastTo?: unknown }
        if (typeof theirs.lastSeq === 'number' && typeof theirs.lastTo === 'number' && theirs.lastSeq > 0) {
          await book.setSentHead(relayDid, {
            seq: theirs.lastSeq,
            to: theirs.lastTo,
            receipts: head?.receipts ?? 0,
            bytes: head?.bytes ?? 0,
          })
        }
        this.#components.logger.warn(
          { event: 'ledger.receipt_refused', relay: relayDid, code: answer.error.code, seq: receipt.seq },
          'the relay refused a receipt',
        )
      }
      return answer
    } finally {
      state.inFlight = false
      // What came in while this one was in flight goes in the next at once, if it is enough.
      if (answered && this.#pending(meter, relay).bytes >= this.#init.receiptBytes)
        setImmediate(() => this.#sendSoon(meter, relay))
    }
  }

  /** Sends `receipt` to `relay` (a peer id) and reads its answer. */
  async #exchange(relay: string, receipt: unknown): Promise<Answer> {
    const signal = AbortSignal.timeout(10_000)
    const stream = await this.#components
      .libp2p()
      .dialProtocol(peerIdFromString(relay), MESH_RECEIPTS_PROTOCOL, {
        signal,
      })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_RECEIPT_MESSAGE_BYTES })
      await lp.write(new TextEncoder().encode(JSON.stringify(receipt)), { signal })
      const reply = JSON.parse(new TextDecoder().decode((await lp.read({ signal })).subarray())) as Answer
      await stream.close({ signal })
      return reply
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  // ---- relay ----

  async #serve(stream: Stream, connection: Connection): Promise<void> {
    const signal = AbortSignal.timeout(10_000)
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_RECEIPT_MESSAGE_BYTES })
      const bytes = (await lp.read({ signal })).subarray()
      let message: unknown
      try {
        message = JSON.parse(new TextDecoder().decode(bytes))
      } catch {
        message = undefined
      }
      const answer = await this.take(message, connection.remotePeer.toString())
      await lp.write(new TextEncoder().encode(JSON.stringify(answer)), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  /** Takes a receipt `from` a peer (its peer id) as this relay would off the wire; returns the answer. */
  async take(message: unknown, from: string): Promise<Answer> {
    const libp2p = this.#components.libp2p()
    const meter = libp2p.services.relayMeter
    const relayDid = this.#components.key().did
    const refuse = (
      code: ReceiptProblemCode | 'MESH_FORBIDDEN',
      text: string,
      details: Record<string, unknown> = {},
    ) => {
      this.#refused.set(from, (this.#refused.get(from) ?? 0) + 1)
      this.#components.logger.info(
        { event: 'ledger.receipt_refused', from, code, reason: text },
        'receipt refused',
      )
      return { error: { code, message: text, details } }
    }
    const receipt = message as Receipt
    const first = checkNext(relayDid, message, undefined)
    if (first?.code === 'MESH_BAD_REQUEST' || first?.code === 'MESH_SIGNATURE_MISMATCH')
      return refuse(first.code, first.message)
    if (receipt.beneficiary !== didFromPeerId(from))
      return refuse('MESH_FORBIDDEN', 'a receipt is taken from its beneficiary only')
    if (receipt.to > Date.now() + RECEIPT_MAX_SKEW_MS)
      return refuse('MESH_CLOCK_SKEW', 'the receipt ends in the future')
    const receipted = this.#receiptedOf(meter, from)
    // over every start of this relay (RelayCarry): a receipt may cover bytes carried before a restart
    const totals = this.#carry.total(from, this.#current(meter, from))
    const measured = totals.measured
    const before = totals.receipted
    const { taken, result, summary } = await this.#components.book.take(receipt, (head) => {
      const problem: ReceiptProblem | undefined = checkNext(relayDid, receipt, head)
      if (problem !== undefined) return { problem, head }
      // A circuit reset leaves in flight what only its sender counted: the slack covers it.
      const allowed = measured + this.#init.slackBytes + measured * 0.01
      if (before + receipt.bytes > allowed)
        return {
          problem: {
            beneficiary: receipt.beneficiary,
            seq: receipt.seq,
            code: 'MESH_RECEIPT_INVALID' as const,
            message: `the receipts claim ${before + receipt.bytes} bytes; the relay carried ${measured}`,
          },
          head,
        }
      return undefined
    })
    if (!taken && result !== undefined) {
      const { problem, head } = result
      return refuse(problem.code, problem.message, { lastSeq: head?.seq ?? 0, lastTo: head?.to ?? 0 })
    }
    receipted.bytes += receipt.bytes
    this.#lastTaken.set(from, Date.now())
    return { ok: { seq: receipt.seq, receipts: summary?.receipts ?? 0, bytes: summary?.bytes ?? 0 } }
  }

  #receiptedOf(meter: RelayMeter, peer: string): { meter: RelayMeter; bytes: number } {
    let entry = this.#receipted.get(peer)
    if (entry === undefined || entry.meter !== meter) {
      entry = { meter, bytes: 0 }
      this.#receipted.set(peer, entry)
    }
    return entry
  }

  /** Measured and receipted for `peer` since this host started. */
  #current(meter: RelayMeter, peer: string): StoredCount {
    return { measured: meter.served(peer)?.bytes ?? 0, receipted: this.#receiptedOf(meter, peer).bytes }
  }

  /** Unreceipted bytes of `peer` over every start of this relay. */
  #unreceipted(meter: RelayMeter, peer: string): number {
    const total = this.#carry.total(peer, this.#current(meter, peer))
    return Math.max(0, total.measured - total.receipted)
  }

  #saveCounts(meter: RelayMeter): Promise<void> {
    return this.#carry.save(
      meter.servedAll().map(([peer]) => peer),
      (peer) => this.#current(meter, peer),
    )
  }

  /**
   * As a relay: serves `did` again — its cut-off lifted and its debt forgiven (what it was
   * measured counts as receipted), here and in the store. Returns whether it was cut off.
   */
  async forgive(did: string): Promise<boolean> {
    const meter = this.#components.libp2p().services.relayMeter
    const peer = peerIdOf(did)
    const wasCut = meter.cutOff(peer) !== undefined
    meter.restore(peer)
    this.#overSince.delete(peer)
    await this.#carry.forgive(peer, this.#current(meter, peer))
    return wasCut
  }

  /**
   * The policy: within `freeBytes` unreceipted, a beneficiary is served; past it, only
   * while receipts keep coming (one taken within `graceMs`, counted from when it went
   * past) and the debt stays under `maxDebtBytes`.
   */
  #checkAllowance(meter: RelayMeter, peer: string): void {
    if (meter.cutOff(peer) !== undefined) return
    const debt = this.#unreceipted(meter, peer)
    if (debt <= this.#init.freeBytes) {
      this.#overSince.delete(peer)
      return
    }
    const now = Date.now()
    const over = this.#overSince.get(peer) ?? now
    this.#overSince.set(peer, over)
    const signing = now - Math.max(over, this.#lastTaken.get(peer) ?? 0) <= this.#init.graceMs
    if (signing && debt <= this.#init.maxDebtBytes) return
    const at = Date.now()
    meter.cut(peer, 'MESH_RECEIPTS_REQUIRED', at)
    this.#carry
      .cut(peer, 'MESH_RECEIPTS_REQUIRED', at)
      .catch((err: unknown) =>
        this.#components.logger.warn({ event: 'ledger.cut_not_kept', peer, err }, 'cut-off not stored'),
      )
    this.#components.logger.warn(
      { event: 'ledger.cut_off', peer, code: 'MESH_RECEIPTS_REQUIRED', freeBytes: this.#init.freeBytes },
      'a beneficiary past its free allowance without receipts is cut off',
    )
  }

  // ---- view ----

  /** `GET /api/ledger`. */
  async view(options: { receipts?: boolean } = {}): Promise<LedgerView> {
    const libp2p = this.#components.libp2p()
    const meter = libp2p.services.relayMeter
    const { book } = this.#components
    const snapshot = await book.snapshot()
    const summaries = new Map(snapshot.summaries.map((s) => [s.did, s]))
    const peers = new Map<string, string>()
    for (const [peer] of meter.servedAll()) peers.set(didFromPeerId(peer), peer)
    for (const did of summaries.keys()) if (!peers.has(did)) peers.set(did, peerIdOf(did))
    for (const peer of this.#carry.peers())
      if (!peers.has(didFromPeerId(peer))) peers.set(didFromPeerId(peer), peer)
    const { receipts } = snapshot
    const beneficiaries: LedgerBeneficiaryView[] = []
    for (const [did, peer] of peers) {
      const count = meter.served(peer)
      const summary = summaries.get(did)
      const cut = meter.cutOff(peer)
      const own = receipts.filter((r) => r.beneficiary === did)
      const row: LedgerBeneficiaryView = {
        did,
        peerId: peer,
        measuredBytes: count?.bytes ?? 0,
        measuredMessages: count?.messages ?? 0,
        circuits: count?.circuits ?? 0,
        receipts: summary?.receipts ?? 0,
        receiptedBytes: summary?.bytes ?? 0,
        receiptedMessages: summary?.messages ?? 0,
        lastSeq: summary?.lastSeq ?? 0,
        unreceiptedBytes: this.#unreceipted(meter, peer),
        refused: this.#refused.get(peer) ?? 0,
        verified: false,
        cutOff: cut === undefined ? null : { code: cut.code, at: new Date(cut.at).toISOString() },
      }
      row.verified = verifyLedger({ did: this.#components.key().did, beneficiaries: [row], receipts: own }).ok
      beneficiaries.push(row)
    }
    const relays: LedgerRelayView[] = []
    for (const [relay, count] of meter.relayedAll()) {
      const did = didFromPeerId(relay)
      const head = await book.sentHead(did)
      relays.push({
        did,
        peerId: relay,
        measuredBytes: count.bytes,
        measuredMessages: count.messages,
        receipts: head?.receipts ?? 0,
        receiptedBytes: head?.bytes ?? 0,
        lastSeq: head?.seq ?? 0,
        lastError: this.#sent.get(relay)?.lastError ?? null,
      })
    }
    return {
      did: this.#components.key().did,
      relaying: libp2p.services.relay !== undefined,
      freeBytes: this.#init.freeBytes,
      signing: this.#init.signReceipts,
      beneficiaries,
      relays,
      ...(options.receipts === true ? { receipts } : {}),
    }
  }
}

function peerIdOf(did: string): string {
  try {
    return peerIdFromDid(did).toString()
  } catch {
    return ''
  }
}
