import { RateLimitedError } from '../errors.ts'

export interface RateLimiterInit {
  /** Tokens a key starts with and can save up: the largest burst; default 20. */
  capacity?: number
  /** Tokens added per second to each key; default 5. */
  refillPerSecond?: number
  /** Most keys tracked; the least recently used is forgotten first; default 10 000. */
  maxKeys?: number
  /** default `Date.now` */
  now?: () => number
}

interface Bucket {
  tokens: number
  at: number
}

/**
 * A token bucket per key (a peer mesh did), so that a flood from one peer is
 * refused while every other peer goes through. Kept in memory: after a restart every
 * peer starts with a full bucket, which is no more than a burst.
 *
 * A forgotten key starts full when it returns, so `maxKeys` should exceed the number
 * of peers active at once; a peer forgotten that way was not the most active one.
 */
export class RateLimiter {
  readonly #capacity: number
  readonly #refillPerMs: number
  readonly #maxKeys: number
  readonly #now: () => number
  // Map order is insertion order: re-inserting on use keeps the least recent first.
  readonly #buckets = new Map<string, Bucket>()

  constructor(init: RateLimiterInit = {}) {
    this.#capacity = init.capacity ?? 20
    this.#refillPerMs = (init.refillPerSecond ?? 5) / 1000
    this.#maxKeys = init.maxKeys ?? 10_000
    this.#now = init.now ?? Date.now
    if (!(this.#capacity >= 1) || !(this.#refillPerMs >= 0) || !(this.#maxKeys >= 1)) {
      throw new RangeError('rate limiter needs capacity ≥ 1, refill ≥ 0 and maxKeys ≥ 1')
    }
  }

  /** Takes `cost` tokens from `key`'s bucket; false (and nothing taken) when there are too few. */
  take(key: string, cost = 1): boolean {
    const bucket = this.#bucket(key)
    if (bucket.tokens < cost) return false
    bucket.tokens -= cost
    return true
  }

  /** Like `take`, but throws MESH_RATE_LIMITED with `retryAfterMs` in its details. */
  consume(key: string, cost = 1): void {
    if (this.take(key, cost)) return
    const bucket = this.#buckets.get(key) as Bucket
    const retryAfterMs =
      this.#refillPerMs > 0 && cost <= this.#capacity
        ? Math.ceil((cost - bucket.tokens) / this.#refillPerMs)
        : null
    throw new RateLimitedError('too many requests from this peer', { key, retryAfterMs })
  }

  /** Tokens `key` has now (capacity for an unknown key). */
  available(key: string): number {
    const bucket = this.#buckets.get(key)
    if (bucket === undefined) return this.#capacity
    return Math.min(this.#capacity, bucket.tokens + (this.#now() - bucket.at) * this.#refillPerMs)
  }

  /** How many keys are tracked. */
  get size(): number {
    return this.#buckets.size
  }

  #bucket(key: string): Bucket {
    const now = this.#now()
    let bucket = this.#buckets.get(key)
    if (bucket === undefined) {
      bucket = { tokens: this.#capacity, at: now }
      if (this.#buckets.size >= this.#maxKeys) {
        const oldest = this.#buckets.keys().next().value
        if (oldest !== undefined) this.#buckets.delete(oldest)
      }
    } else {
      // A clock stepping back adds nothing rather than taking tokens away.
      bucket.tokens = Math.min(
        this.#capacity,
        bucket.tokens + Math.max(0, now - bucket.at) * this.#refillPerMs,
      )
      bucket.at = now
      this.#buckets.delete(key)
    }
    this.#buckets.set(key, bucket)
    return bucket
  }
}
