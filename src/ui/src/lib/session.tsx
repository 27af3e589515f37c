import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
} from 'react'
import { ApiError, request } from './api.ts'
import { utf8 } from './bytes.ts'
import { forgetKey, type HumanKey, loadStoredKey, sign, storeKey } from './human-key.ts'
import type { Health, Manifest, Me } from './types.ts'
import { type Act, decodeToken, signAct } from './ucan.ts'

export interface Session {
  health: Health
  /** The mesh's name, from its signed manifest. */
  meshName: string
  key: HumanKey
  me: Me
  token: string
  /** A JSON call with the session's token; signs in again once if the token expired. */
  call<T>(method: string, path: string, body?: unknown): Promise<T>
  /**
   * Signs a human act — a UCAN chain: an invocation by the key held in this browser,
   * addressed to this mesh, proved by the mesh's root delegation to its architect.
   */
  act(act: Act): Promise<string>
  signOut(options?: { forget?: boolean }): Promise<void>
}

type State =
  | { kind: 'loading' }
  | { kind: 'signed-out'; health?: Health; error?: ApiError }
  | { kind: 'signed-in'; health: Health; meshName: string; key: HumanKey; me: Me; token: string }

interface Ctx {
  state: State
  signIn(key: HumanKey, options?: { remember?: boolean }): Promise<void>
  session: Session | undefined
}

const SessionContext = createContext<Ctx | undefined>(undefined)

/** `mesh-session:<mesh did>:<nonce>` signed by the human key, as SPEC §3 asks. */
async function openSession(key: HumanKey): Promise<{ health: Health; token: string; me: Me }> {
  const health = await request<Health>('GET', '/api/health')
  const { nonce } = await request<{ nonce: string }>('GET', '/api/session/challenge')
  const signature = await sign(key, utf8(`mesh-session:${health.did}:${nonce}`))
  const { token } = await request<{ token: string }>('POST', '/api/session', {
    body: { did: key.did, nonce, signature },
  })
  const me = await request<Me>('GET', '/api/me', { token })
  return { health, token, me }
}

async function meshNameOf(health: Health): Promise<string> {
  try {
    return (await request<Manifest>('GET', '/.well-known/mesh-manifest.json')).name
  } catch {
    return health.did.slice(0, 16)
  }
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<State>({ kind: 'loading' })
  const tokenRef = useRef<string | undefined>(undefined)

  const signIn = useCallback(async (key: HumanKey, options: { remember?: boolean } = {}) => {
    const { health, token, me } = await openSession(key)
    if (options.remember !== false) await storeKey(key)
    tokenRef.current = token
    setState({ kind: 'signed-in', health, meshName: await meshNameOf(health), key, me, token })
  }, [])

  useEffect(() => {
    let cancelled = false
    ;(async () => {
      let health: Health | undefined
      try {
        health = await request<Health>('GET', '/api/health')
      } catch (err) {
        if (!cancelled) setState({ kind: 'signed-out', error: err as ApiError })
        return
      }
      let stored: HumanKey | undefined
      try {
        stored = await loadStoredKey()
      } catch {
        stored = undefined
      }
      if (stored === undefined) {
        if (!cancelled) setState({ kind: 'signed-out', health })
        return
      }
      try {
        await signIn(stored)
      } catch (err) {
        if (!cancelled) setState({ kind: 'signed-out', health, error: err as ApiError })
      }
    })()
    return () => {
      cancelled = true
    }
  }, [signIn])

  const session = useMemo<Session | undefined>(() => {
    if (state.kind !== 'signed-in') return undefined
    const { key } = state
    const call = async <T,>(method: string, path: string, body?: unknown): Promise<T> => {
      try {
        return await request<T>(method, path, { token: tokenRef.current, body })
      } catch (err) {
        if (!(err instanceof ApiError) || err.code !== 'MESH_UNAUTHENTICATED') throw err
        const fresh = await openSession(key)
        tokenRef.current = fresh.token
        return request<T>(method, path, { token: fresh.token, body })
      }
    }
    return {
      health: state.health,
      meshName: state.meshName,
      key,
      me: state.me,
      get token() {
        return tokenRef.current ?? state.token
      },
      call,
      async act(act: Act) {
        // The mesh's current did and root delegation: a key rotation re-issues both.
        const health = await request<Health>('GET', '/api/health')
        const root = await call<{ token: string; architect: string }>('GET', '/api/auth/root-delegation')
        if (root.architect !== key.did)
          throw new ApiError(
            'MESH_FORBIDDEN',
            'only the architect’s key holds the root delegation: sign this act with a delegation to your key (mesh delegate, then the CLI)',
            403,
            { architect: root.architect, signer: key.did },
          )
        return signAct(key, health.did, act, [await decodeToken(root.token)])
      },
      async signOut(options = {}) {
        // Logout at the node first: the token stops working at once, open room links included.
        const token = tokenRef.current ?? state.token
        await request('DELETE', '/api/session', { token }).catch(() => undefined)
        if (options.forget === true) await forgetKey()
        tokenRef.current = undefined
        setState({ kind: 'signed-out', health: state.health })
      },
    }
  }, [state])

  const value = useMemo(() => ({ state, signIn, session }), [state, signIn, session])
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>
}

export function useSessionState(): Ctx {
  const ctx = useContext(SessionContext)
  if (ctx === undefined) throw new Error('useSessionState outside SessionProvider')
  return ctx
}

/** The signed-in session; only under the signed-in part of the app. */
export function useSession(): Session {
  const { session } = useSessionState()
  if (session === undefined) throw new Error('useSession while signed out')
  return session
}
