/**
 * Mentions in a message body, one reading for the node (who is notified) and the console
 * (what is shown as a mention). Forms:
 *
 * - `@name`: a member of this mesh (`name` is the member's local id);
 * - `@name:mesh` where `mesh` is this mesh's name: the same member;
 * - `@name:mesh` of another mesh: that mesh's member.
 *
 * An `@` counts only at the start or after a character that cannot be in a name (so
 * `bob@example.com` mentions nobody). Punctuation after a mention is not part of it:
 * `hi @alpha-architect:alpha, welcome` mentions alpha-architect of alpha; `@bob.` and
 * `(@bob)` mention bob; `@bob: hi` is a local bob. Imports nothing (src/api is shared).
 */

/** One `@name[:mesh]` in a body, with where it is (`start` at the `@`, `end` past the last character). */
export interface MentionToken {
  name: string
  /** The mesh name, when the `:mesh` form was used. */
  mesh?: string
  start: number
  end: number
}

/** What a mention is matched against: a room member (or any principal with a local id on a mesh). */
export interface MentionCandidate {
  did: string
  localId: string
  /** The member's home mesh (did). */
  mesh: string
  meshName: string
}

const NAME_CHAR = /[A-Za-z0-9._-]/
// A name, then maybe `:mesh`; a mesh name is what `mesh init` accepts (letters, digits, dashes;
// read in lowercase, as mesh names are).
const MENTION = /@([A-Za-z0-9._-]+)(?::([A-Za-z0-9][A-Za-z0-9-]*))?/g

/** Every mention in `body`, in order. */
export function findMentions(body: string): MentionToken[] {
  const found: MentionToken[] = []
  for (const match of body.matchAll(MENTION)) {
    const start = match.index
    if (start > 0 && NAME_CHAR.test(body[start - 1] as string)) continue
    // A name's trailing dots and dashes are punctuation (`@bob.`, `@bob-`), not part of it.
    const name = (match[1] as string).replace(/[.-]+$/, '')
    if (name.length === 0) continue
    const trimmed = name.length < (match[1] as string).length
    const mesh = trimmed ? undefined : match[2]?.replace(/-+$/, '').toLowerCase()
    const end = start + 1 + name.length + (mesh !== undefined && mesh.length > 0 ? 1 + mesh.length : 0)
    found.push(mesh !== undefined && mesh.length > 0 ? { name, mesh, start, end } : { name, start, end })
  }
  return found
}

/**
 * The dids `body` mentions among `candidates`: `@name` and `@name:<own name>` are members of
 * the own mesh (`own.did`), `@name:<other>` the members of a mesh of that name. In the order
 * first mentioned, each once.
 */
export function resolveMentions(
  body: string,
  candidates: Iterable<MentionCandidate>,
  own: { did: string; name?: string },
): string[] {
  const all = [...candidates]
  const dids = new Set<string>()
  for (const token of findMentions(body)) {
    const local = token.mesh === undefined || token.mesh === own.name
    for (const c of all) {
      if (c.localId !== token.name) continue
      if (local ? c.mesh === own.did : c.meshName === token.mesh && c.mesh !== own.did) dids.add(c.did)
    }
  }
  return [...dids]
}

/** A body cut into text and mentions, for showing it: the mentions as their tokens. */
export function splitMentions(body: string): Array<string | MentionToken> {
  const parts: Array<string | MentionToken> = []
  let at = 0
  for (const token of findMentions(body)) {
    if (token.start > at) parts.push(body.slice(at, token.start))
    parts.push(token)
    at = token.end
  }
  if (at < body.length) parts.push(body.slice(at))
  return parts
}
