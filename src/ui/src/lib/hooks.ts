import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react'
import { type ApiError, asApiError } from './api.ts'

export interface Poll<T> {
  data: T | undefined
  error: ApiError | undefined
  loading: boolean
  reload: () => void
}

/** Loads `load()` now and every `everyMs` (0: once); keeps the last good data across errors. */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[]): Poll<T> {
  const [data, setData] = useState<T | undefined>(undefined)
  const [error, setError] = useState<ApiError | undefined>(undefined)
  const [loading, setLoading] = useState(true)
  const [tick, setTick] = useState(0)
  const loadRef = useRef(load)
  loadRef.current = load

  // biome-ignore lint/correctness/useExhaustiveDependencies: deps are the caller's
  useEffect(() => {
    let cancelled = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const run = async () => {
      try {
        const value = await loadRef.current()
        if (cancelled) return
        setData(value)
        setError(undefined)
      } catch (err) {
        if (!cancelled) setError(asApiError(err))
      } finally {
        if (!cancelled) setLoading(false)
      }
      if (!cancelled && everyMs > 0) timer = setTimeout(run, everyMs)
    }
    setLoading(true)
    void run()
    return () => {
      cancelled = true
      if (timer !== undefined) clearTimeout(timer)
    }
  }, [...deps, everyMs, tick])

  const reload = useCallback(() => setTick((n) => n + 1), [])
  return { data, error, loading, reload }
}

/** Runs a signed act or other change; keeps its error to show it (with its MESH_… code). */
export function useAction<A extends unknown[], R>(
  run: (...args: A) => Promise<R>,
): {
  run: (...args: A) => Promise<R | undefined>
  busy: boolean
  error: ApiError | undefined
  clear: () => void
} {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<ApiError | undefined>(undefined)
  const runRef = useRef(run)
  runRef.current = run
  const wrapped = useCallback(async (...args: A) => {
    setBusy(true)
    setError(undefined)
    try {
      return await runRef.current(...args)
    } catch (err) {
      setError(asApiError(err))
      return undefined
    } finally {
      setBusy(false)
    }
  }, [])
  return { run: wrapped, busy, error, clear: useCallback(() => setError(undefined), []) }
}

// ---- a small router on the History API (the node serves index.html for app paths) ----

const listeners = new Set<() => void>()
window.addEventListener('popstate', () => {
  for (const l of listeners) l()
})

export function navigate(path: string): void {
  if (path === location.pathname) return
  history.pushState(null, '', path)
  for (const l of listeners) l()
}

export function usePath(): string {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l)
      return () => listeners.delete(l)
    },
    () => location.pathname,
  )
}
