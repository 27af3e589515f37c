/**
 * The `mesh` entry point: the only place that reads argv and the environment, prints,
 * or exits; everything it does goes through the node's public API or HTTP API. It wires
 * the command groups (src/cli/commands/) to one formatter (./format.ts).
 */
import { enableCompileCache } from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'

// V8's compile cache goes on before the node's few hundred modules load (the command
// groups import them, hence the dynamic imports, all started at once), which takes a
// good part of the cold start off every run after the first.
enableCompileCache()
// A process started through npm or bin/mesh.js's re-spawn ends with its wrapper (./parent-watch.ts).
const { watchParents } = await import('./parent-watch.ts')
await watchParents({ env: process.env, onLost: () => process.kill(process.pid, 'SIGTERM') })
const [
  { Command },
  { MESH_NODE_VERSION },
  { HumanKeystore },
  { Output, isCommanderExit, jsonRequested, usageError },
  node,
  session,
  keys,
  connections,
  policy,
  audit,
  authority,
  rooms,
  errors,
  // members: enrolment and removal (SPEC §8)
  members,
  // outbound invocation over libp2p
  outbound,
  // revocation people can use (SPEC §9)
  revocation,
  // tasks across meshes (SPEC §13)
  tasks,
  // the model proxy (SPEC §13)
  usage,
  // coordination fees (SPEC §10)
  ledger,
  // files in rooms (issue 18)
  files,
] = await Promise.all([
  import('commander'),
  import('../config.ts'),
  import('../identity/index.ts'),
  import('./format.ts'),
  import('./commands/node.ts'),
  import('./commands/session.ts'),
  import('./commands/keys.ts'),
  import('./commands/connections.ts'),
  import('./commands/policy.ts'),
  import('./commands/audit.ts'),
  import('./commands/authority.ts'),
  import('./commands/rooms.ts'),
  import('./commands/errors.ts'),
  import('./commands/members.ts'),
  import('./commands/outbound.ts'),
  import('./commands/revocation.ts'),
  import('./commands/tasks.ts'), // tasks across meshes (SPEC §13)
  import('./commands/usage.ts'), // the model proxy (SPEC §13)
  import('./commands/ledger.ts'), // coordination fees (SPEC §10)
  import('./commands/files.ts'), // files in rooms (issue 18)
])

const env = process.env
const cli = new Command('mesh')
  .description('The Mesh node: sovereign meshes of people, agents and rooms, federated over libp2p')
  .version(MESH_NODE_VERSION)
  .option('--json', 'print JSON instead of text')
  // Commander's own errors (unknown option, missing argument, …) are thrown, not printed, and
  // printed below like any other: `error MESH_BAD_REQUEST: …`, the error shape under --json.
  // Set before the commands are registered: they inherit both.
  .exitOverride()
  .configureOutput({ outputError: () => {} })
const out = new Output({
  // argv too: an unknown option before it leaves --json unparsed.
  json: () => cli.opts<{ json?: boolean }>().json === true || jsonRequested(process.argv),
  stdout: process.stdout,
  stderr: process.stderr,
})
const ctx = {
  out,
  env,
  keystore: () => new HumanKeystore(env.MESH_KEYSTORE ?? join(homedir(), '.mesh-keys')),
}
// In this order `mesh --help` lists them.
for (const register of [
  node.registerNodeCommands,
  session.registerSessionCommands,
  keys.registerKeyCommands,
  connections.registerConnectionCommands,
  policy.registerPolicyCommands,
  audit.registerAuditCommands,
  authority.registerAuthorityCommands,
  rooms.registerRoomCommands,
  errors.registerErrorCommands,
  members.registerMemberCommands,
  outbound.registerOutboundCommands, // outbound invocation over libp2p
  revocation.registerRevocationCommands, // revocation people can use (SPEC §9)
  tasks.registerTaskCommands, // tasks across meshes (SPEC §13)
  usage.registerUsageCommands, // the model proxy (SPEC §13)
  ledger.registerLedgerCommands, // coordination fees (SPEC §10)
  files.registerFileCommands, // files in rooms (issue 18)
]) {
  register(cli, ctx)
}

try {
  await cli.parseAsync(process.argv)
  // Set, not exit: `mesh start` and `mesh registry` are still running when parseAsync returns.
  if (out.exitCode !== 0) process.exitCode = out.exitCode
} catch (err) {
  // --help and --version end here too, having printed.
  if (isCommanderExit(err)) process.exit(err.exitCode)
  process.exit(out.error(usageError(err, cli, process.argv)))
}
