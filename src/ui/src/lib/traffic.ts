import { useEffect, useSyncExternalStore } from 'react'
import type { Session } from './session.tsx'

/** One reading of the peers' 24 h counters, summed over every peer. */
export interface TrafficSample {
  t: number
  sent: number
  received: number
}

const MAX_SAMPLES = 180
const EVERY_MS = 5000
const STORAGE_KEY = 'mesh-console-traffic'
const listeners = new Set<() => void>()
// Kept in sessionStorage so that a reload does not lose the history.
let samples: TrafficSample[] = restore()

function restore(): TrafficSample[] {
  try {
    const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? '[]') as unknown
    return Array.isArray(value) ? (value as TrafficSample[]).slice(-MAX_SAMPLES) : []
  } catch {
    return []
  }
}

function push(sample: TrafficSample) {
  samples = [...samples.slice(-(MAX_SAMPLES - 1)), sample]
  try {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(samples))
  } catch {
    // storage full or disabled: the chart keeps what is in memory
  }
  for (const l of listeners) l()
}

/**
 * Samples `GET /api/federation/peers` every 5 s while signed in, so the federation
 * view can chart events sent and received over time (the node keeps 24 h counters;
 * the console keeps their history for as long as it is open).
 */
export function useTrafficSampler(session: Session | undefined): void {
  useEffect(() => {
    if (session === undefined) return
    let stopped = false
    const tick = async () => {
      try {
        const peers = await session.call('listPeers')
        if (stopped) return
        push({
          t: Date.now(),
          sent: peers.reduce((n, p) => n + p.eventsSent24h, 0),
          received: peers.reduce((n, p) => n + p.eventsReceived24h, 0),
        })
      } catch {
        // A missed sample is a gap in the chart; the views show the node's errors.
      }
    }
    void tick()
    const timer = setInterval(tick, EVERY_MS)
    return () => {
      stopped = true
      clearInterval(timer)
    }
  }, [session])
}

export function useTraffic(): TrafficSample[] {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l)
      return () => listeners.delete(l)
    },
    () => samples,
  )
}
