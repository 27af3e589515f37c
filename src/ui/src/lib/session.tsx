import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState } from 'react'
import type { ApiClient } from '../../../api/client.ts'
import type { RouteName } from '../../../api/routes.ts'
import type { Health, Me } from '../../../api/types.ts'
import { ApiError, nodeClient } from './api.ts'
import { apiSigner, forgetKey, type HumanKey, loadStoredKey, storeKey } from './human-key.ts'
import { type Act, decodeToken, signAct } from './ucan.ts'

export interface Session {
  health: Health
  /** The mesh's name, from its signed manifest. */
  meshName: string
  key: HumanKey
  me: Me
  token: string
  /**
   * A call of the node's API by route name (src/api/routes.ts), with the session's
   * token, typed by the contract; signs in again once if the token expired.
   */
  call: ApiClient['call']
  /**
   * Signs a human act — a UCAN chain: an invocation by the key held in this browser,
   * addressed to this mesh, proved by the mesh's root delegation to its architect.
   */
  act(act: Act): Promise<string>
  // files in rooms (issue 18): a file's bytes up and down, with the session's token
  uploadFile: ApiClient['uploadFile']
  fetchFile: ApiClient['fetchFile']
  signOut(options?: { forget?: boolean }): Promise<void>
}

type State =
  | { kind: 'loading' }
  | { kind: 'signed-out'; health?: Health; error?: ApiError }
  | { kind: 'signed-in'; health: Health; meshName: string; key: HumanKey; me: Me; client: ApiClient }

interface Ctx {
  state: State
  signIn(key: HumanKey, options?: { remember?: boolean }): Promise<void>
  session: Session | undefined
}

const SessionContext = createContext<Ctx | undefined>(undefined)

/** A client signed in with the human key (`mesh-session:<mesh did>:<nonce>`, SPEC §3). */
async function openSession(key: HumanKey): Promise<{ client: ApiClient; health: Health; me: Me }> {
  const client = nodeClient()
  await client.signIn(apiSigner(key))
  const [health, me] = await Promise.all([client.call('health'), client.call('me')])
  return { client, health, me }
}

async function meshNameOf(client: ApiClient, health: Health): Promise<string> {
  try {
    return (await client.call('manifest')).name
  } catch {
    return health.did.slice(0, 16)
  }
}

/** `client.call` by a route name known only at run time (the session's retry). */
function callRoute(client: ApiClient, name: RouteName, args: unknown[]): Promise<unknown> {
  return (client.call as (name: RouteName, ...args: unknown[]) => Promise<unknown>).apply(client, [
    name,
    ...args,
  ])
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<State>({ kind: 'loading' })

  const signIn = useCallback(async (key: HumanKey, options: { remember?: boolean } = {}) => {
    const { client, health, me } = await openSession(key)
    if (options.remember !== false) await storeKey(key)
    setState({ kind: 'signed-in', health, meshName: await meshNameOf(client, health), key, me, client })
  }, [])

  useEffect(() => {
    let cancelled = false
    ;(async () => {
      let health: Health | undefined
      try {
        health = await nodeClient().call('health')
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
    const { key, client } = state
    const call = (async (name: RouteName, ...args: unknown[]) => {
      try {
        return await callRoute(client, name, args)
      } catch (err) {
        if (!(err instanceof ApiError) || err.code !== 'MESH_UNAUTHENTICATED') throw err
        await client.signIn(apiSigner(key))
        return callRoute(client, name, args)
      }
    }) as ApiClient['call']
    return {
      health: state.health,
      meshName: state.meshName,
      key,
      me: state.me,
      get token() {
        return client.token ?? ''
      },
      call,
      // files in rooms (issue 18)
      uploadFile: (...args) => client.uploadFile(...args),
      fetchFile: (...args) => client.fetchFile(...args),
      async act(act: Act) {
        // The mesh's current did and root delegation: a key rotation re-issues both.
        const health = await client.call('health')
        const root = await call('rootDelegation')
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
        await client.signOut().catch(() => undefined)
        client.token = undefined
        if (options.forget === true) await forgetKey()
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
