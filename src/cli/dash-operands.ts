import type { Command } from 'commander'

/**
 * Entry ids (messages, tasks, reactions) are base64url hashes: one in 64 starts with '-',
 * and Commander reads such an argument as an unknown option (`mesh task done ROOM -l7L_Lp…`
 * failed with "unknown option"). An argument that can only be an id or an id's prefix is
 * kept from Commander's option parsing: one dash, then at least three characters of the id
 * alphabet, and not a short option of the command that takes a value (`-mHello` stays
 * `-m Hello`). `--` still ends the options, as everywhere.
 */
const ID_LIKE = /^-[A-Za-z0-9_][A-Za-z0-9_-]{2,}$/

/** Makes every leaf command under `root` take id-like arguments that start with '-' as operands. */
export function idsAsOperands(root: Command): void {
  for (const command of leaves(root)) {
    const parse = command.parseOptions.bind(command)
    command.parseOptions = (args: string[]) => {
      const held = new Map<string, string>()
      const masked = args.map((arg, i) => {
        // The value of an option before it (`--body -urgent`) is left to Commander, which takes it.
        if (!ID_LIKE.test(arg) || takesValue(command, `-${arg[1]}`) || takesValue(command, args[i - 1]))
          return arg
        // A stand-in Commander takes for an operand (no dash), and no one types (a NUL).
        const stand = `\u0000${i}`
        held.set(stand, arg)
        return stand
      })
      const back = (arg: string) => held.get(arg) ?? arg
      const { operands, unknown } = parse(masked)
      return { operands: operands.map(back), unknown: unknown.map(back) }
    }
  }
}

function leaves(command: Command): Command[] {
  return command.commands.length === 0 ? [command] : command.commands.flatMap(leaves)
}

/** Whether `flag` is one of `command`'s options that takes a value. */
function takesValue(command: Command, flag: string | undefined): boolean {
  if (flag === undefined) return false
  return command.options.some((o) => (o.short === flag || o.long === flag) && (o.required || o.optional))
}
