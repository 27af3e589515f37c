import type { CredentialVerifier, VerifiedCredential } from './credentials.ts'
import type { AuthorityFailure } from './failure.ts'
import type { AuthorityRequest } from './verdict.ts'

/** Presented credentials whose check waits until the chain needs them. */
export interface LaterCredentials {
  presentation?: string
  /** [place in the request, JWT] */
  credentials: [number, string][]
}

export interface PresentedCredentialsComponents {
  credentials: Pick<CredentialVerifier, 'verifyCredential' | 'verifyPresentation'>
}

/** Most credentials one request may present. */
const MAX_PRESENTED = 16

/** The VC proof: the presentation and the credentials presented with a request. */
export class PresentedCredentials {
  readonly #credentials: PresentedCredentialsComponents['credentials']
  readonly #meshDid: string

  constructor(components: PresentedCredentialsComponents, init: { meshDid: string }) {
    this.#credentials = components.credentials
    this.#meshDid = init.meshDid
  }

  /**
   * Checks the presentation and the credentials presented, adding each valid one to
   * `presented`; the first bad one is the failure. With `later`, one whose check needs
   * a did:web document (its issuer, the presentation's holder or a credential inside it)
   * is not checked but kept there, for the caller to check only if the request gets far
   * enough to need it. `indexes` are the credentials' places in the request (default
   * their places in `request.credentials`).
   */
  async check(
    request: Pick<AuthorityRequest, 'presentation' | 'credentials'>,
    invoker: string,
    now: number,
    presented: VerifiedCredential[],
    later?: LaterCredentials,
    indexes?: number[],
  ): Promise<AuthorityFailure | undefined> {
    if (request.presentation !== undefined) {
      if (later !== undefined && needsDidWeb(request.presentation)) {
        later.presentation = request.presentation
      } else {
        const vp = await this.#credentials.verifyPresentation(request.presentation, {
          now,
          audience: this.#meshDid,
          holder: invoker,
        })
        if (vp.error !== undefined) return vp.error
        presented.push(...vp.ok.credentials)
      }
    }
    const list = request.credentials ?? []
    if (!Array.isArray(list) || list.length > MAX_PRESENTED) {
      return {
        code: 'MESH_VC_INVALID',
        message: `credentials is a list of at most ${MAX_PRESENTED} JWTs`,
        proof: 'vc',
        details: {},
      }
    }
    for (const [i, jwt] of list.entries()) {
      const index = indexes?.[i] ?? i
      if (later !== undefined && needsDidWeb(jwt)) {
        later.credentials.push([index, jwt])
        continue
      }
      const result = await this.#credentials.verifyCredential(jwt, { now })
      if (result.error !== undefined) {
        return {
          ...result.error,
          message: `credential ${index}: ${result.error.message}`,
          details: { ...result.error.details, index },
        }
      }
      presented.push(result.ok)
    }
    return undefined
  }

  /** Checks what `check` left in `later`. */
  checkLater(
    later: LaterCredentials,
    invoker: string,
    now: number,
    presented: VerifiedCredential[],
  ): Promise<AuthorityFailure | undefined> {
    return this.check(
      { ...later, credentials: later.credentials.map(([, jwt]) => jwt) },
      invoker,
      now,
      presented,
      undefined,
      later.credentials.map(([index]) => index),
    )
  }
}

/** Whether checking this JWT (a credential, or a presentation and what it holds) fetches a did:web. */
export function needsDidWeb(jwt: unknown, depth = 0): boolean {
  if (typeof jwt !== 'string') return false
  let payload: { iss?: unknown; vp?: { verifiableCredential?: unknown } }
  try {
    payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'))
  } catch {
    return false
  }
  if (typeof payload !== 'object' || payload === null) return false
  if (typeof payload.iss === 'string' && payload.iss.startsWith('did:web:')) return true
  const inner = payload.vp?.verifiableCredential
  return depth === 0 && Array.isArray(inner) && inner.some((c) => needsDidWeb(c, 1))
}
