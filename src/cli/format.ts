/**
 * What the `mesh` commands print, and with which exit status. Every command hands its
 * answer here as a value (shown as one JSON line under `--json`) and its human text;
 * no command writes to stdout or stderr itself. The SPEC's CLI contract: exit status 0
 * on success, 1 with the error code on failure.
 */
import { MeshError } from '../errors.ts'

/** Exit statuses of the `mesh` process. */
export const EXIT_CODE = { ok: 0, failure: 1 } as const
export type ExitCode = (typeof EXIT_CODE)[keyof typeof EXIT_CODE]

/** Where text goes: process.stdout / process.stderr, or a buffer in a test. */
export interface TextSink {
  write(text: string): unknown
}

export interface OutputInit {
  /** Whether `--json` was given; read when printing, since it is known only once argv is parsed. */
  json: () => boolean
  stdout: TextSink
  stderr: TextSink
}

/** An error as the SPEC's error shape: `{error: {code, message, details}}`. */
export function errorShape(err: unknown): {
  error: { code: string; message: string; details: Record<string, unknown> }
} {
  return {
    error: {
      code: err instanceof MeshError ? err.code : 'MESH_INTERNAL',
      message: err instanceof Error ? err.message : String(err),
      details: err instanceof MeshError ? err.details : {},
    },
  }
}

/** The one formatter: human text or `--json`, `error MESH_…` lines, and the exit status they mean. */
export class Output {
  readonly #json: () => boolean
  readonly #stdout: TextSink
  readonly #stderr: TextSink
  #exitCode: ExitCode = EXIT_CODE.ok

  constructor(init: OutputInit) {
    this.#json = init.json
    this.#stdout = init.stdout
    this.#stderr = init.stderr
  }

  /** The status the process ends with when its command returns: 1 once a check has failed. */
  get exitCode(): ExitCode {
    return this.#exitCode
  }

  /** A command's answer: `value` as one JSON line under `--json`, else `human`. */
  print(value: unknown, human: string): void {
    this.#stdout.write(this.#json() ? `${JSON.stringify(value)}\n` : `${human}\n`)
  }

  /** An answer that reports a failed check (e.g. an audit log that does not verify): printed, and exit 1. */
  printFailed(value: unknown, human: string): void {
    this.print(value, human)
    this.#exitCode = EXIT_CODE.failure
  }

  /** A note for the person at the terminal, on stderr whatever `--json` says (stdout stays the answer). */
  notice(human: string): void {
    this.#stderr.write(`${human}\n`)
  }

  /** One JSON line whatever `--json` says: output meant to be saved and read back. */
  printJson(value: unknown): void {
    this.#stdout.write(`${JSON.stringify(value)}\n`)
  }

  /**
   * A command that failed: `error MESH_…: message` on stderr (with the stack when the
   * error is not one of ours), and the error shape on stdout under `--json`. Returns the
   * exit status to end with.
   */
  error(err: unknown): ExitCode {
    const shape = errorShape(err)
    const { code, message } = shape.error
    if (this.#json()) this.#stdout.write(`${JSON.stringify(shape)}\n`)
    this.#stderr.write(`error ${code}: ${message}\n`)
    if (code === 'MESH_INTERNAL' && err instanceof Error && err.stack) this.#stderr.write(`${err.stack}\n`)
    return EXIT_CODE.failure
  }

  /** A running node or registry that failed to stop cleanly. Returns the exit status to end with. */
  shutdownError(err: unknown): ExitCode {
    // issue 14: in the one `error MESH_…` form (a node that cannot stop is never a person's mistake)
    const code = err instanceof MeshError ? err.code : 'MESH_INTERNAL'
    const message = err instanceof Error ? err.message : String(err)
    this.#stderr.write(`error ${code}: the server did not stop cleanly: ${message}\n`)
    return EXIT_CODE.failure
  }
}

// issue 14: commander's own errors follow `error MESH_…` and --json like every other
interface CommanderErrorLike {
  code: string
  exitCode: number
  message: string
}

const isCommanderError = (err: unknown): err is CommanderErrorLike => {
  const code = err instanceof Error ? (err as Partial<CommanderErrorLike>).code : undefined
  return typeof code === 'string' && code.startsWith('commander.')
}

/** `--help`, `--version`, or a command group's help shown for lack of a command: nothing more to print. */
export function isCommanderExit(err: unknown): err is CommanderErrorLike {
  return (
    isCommanderError(err) &&
    [
      'commander.helpDisplayed',
      'commander.version',
      'commander.help',
      'commander.executeSubCommandAsync',
    ].includes(err.code)
  )
}

/** Whether `--json` is among the arguments (before a `--`). */
export function jsonRequested(argv: string[]): boolean {
  const end = argv.indexOf('--')
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json')
}

// What a path a person gave (--data, MESH_KEYSTORE) cannot be, in words.
const PATH_ERRORS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EEXIST: 'a file is in the way',
}

/** A file-system refusal of a path (permissions, a file where a directory should be) as MESH_BAD_REQUEST. */
function pathError(err: unknown): MeshError | undefined {
  const e = err as Partial<NodeJS.ErrnoException> | undefined
  const reason = typeof e?.code === 'string' ? PATH_ERRORS[e.code] : undefined
  if (reason === undefined || typeof e?.path !== 'string') return undefined
  return new MeshError('MESH_BAD_REQUEST', `cannot use ${e.path}: ${reason}`, { path: e.path, errno: e.code })
}

/**
 * A command line the parser refused (commander's error: unknown option or command, missing
 * or extra argument, a value not among the choices) as MESH_BAD_REQUEST, with a pointer to
 * the command's help; a path the file system refuses (EACCES, EROFS, ENOTDIR, …) as
 * MESH_BAD_REQUEST naming it; anything else unchanged.
 */
export function usageError(err: unknown, program: CommandTree, argv: string[]): unknown {
  const fsError = pathError(err)
  if (fsError !== undefined) return fsError
  if (!isCommanderError(err)) return err
  const path = commandPath(program, argv.slice(2))
  const message = err.message.replace(/^error: /, '')
  return new MeshError('MESH_BAD_REQUEST', `${message} (see ${['mesh', ...path, '--help'].join(' ')})`, {
    usage: err.code.slice('commander.'.length),
  })
}

/** What usageError reads of commander's program: command names and subcommands (aliases too). */
export interface CommandTree {
  readonly commands: readonly CommandTree[]
  name(): string
  aliases(): string[]
}

/** The (sub)command names `args` reach, e.g. `['member', 'add']` for `member add --bogus`. */
function commandPath(program: CommandTree, args: string[]): string[] {
  const path: string[] = []
  let at = program
  for (const arg of args) {
    const next = at.commands.find((c) => c.name() === arg || c.aliases().includes(arg))
    if (next === undefined) continue
    path.push(next.name())
    at = next
  }
  return path
}
