// `tideway topics|groups|produce|consume`: the client commands. They speak the Kafka protocol
// through @platformatic/kafka only (never broker internals), so they work against any Kafka
// cluster.
//
// Exit codes: 0 done, 1 the operation failed (unreachable broker, unknown topic, refused
// request), 2 usage error (bad flags or arguments). An expected failure is one line on stderr,
// `tideway: <what went wrong>`; only an unexpected exception (our bug) prints a stack trace.
import { breakersCommands, breakersUsage } from './breakers-command.ts'
import type { ClientCommand, CommandIO } from './command.ts'
import { consumeCommand } from './consume-command.ts'
import { CommandError, UsageError } from './errors.ts'
import { dlqCommands } from './dlq-command.ts'
import { groupsCommands } from './groups-command.ts'
import { OutputSink } from './output.ts'
import { produceCommand } from './produce-command.ts'
import { topicsCommands } from './topics-command.ts'

const topicsUsage = `Usage: tideway topics <create|list|describe|delete> [options]

Commands:
  create <name>     create a topic (--partitions N, --config key=value ...)
  list              list topics with their partition counts
  describe <name>   partitions with leader and offsets, and the topic's configs
  delete <name>     delete a topic

Run \`tideway topics <command> --help\` for a command's options.
`

const groupsUsage = `Usage: tideway groups <list|describe|delete|reset-offsets> [options]

Commands:
  list                    list consumer groups with their state and member count
  describe <group>        members, assignments, and committed offset, log end and lag per partition
  delete <group>          delete a group without active members, and its committed offsets
  reset-offsets <group>   move a group's committed offsets on a topic (a dry run without --execute)

Run \`tideway groups <command> --help\` for a command's options.
`

const dlqUsage = `Usage: tideway dlq <list|show|redrive> [options]

Commands:
  list                    dead-letter topics (<topic>.dlt) and how many offsets each holds
  show <dlt-topic>        each dead letter: where it failed, the group, the error class and message
  redrive <dlt-topic>     send dead letters back where they failed, in order (a dry run without --execute)

Run \`tideway dlq <command> --help\` for a command's options.
`

/** The commands that take a subcommand: its table, the usage text, and the names for errors. */
const families: Readonly<Record<string, { commands: Readonly<Record<string, ClientCommand>>; usage: string; names: string }>> = {
  topics: { commands: topicsCommands, usage: topicsUsage, names: 'create, list, describe or delete' },
  groups: { commands: groupsCommands, usage: groupsUsage, names: 'list, describe, delete or reset-offsets' },
  dlq: { commands: dlqCommands, usage: dlqUsage, names: 'list, show or redrive' },
  breakers: { commands: breakersCommands, usage: breakersUsage, names: 'list' },
}

export async function runClientCommand(command: 'topics' | 'groups' | 'dlq' | 'breakers' | 'produce' | 'consume', argv: string[]): Promise<number> {
  const { io, dispose } = processIO()
  try {
    return await runWith(command, argv, io)
  } finally {
    dispose()
  }
}

/** Runs a client command against the given edges; what tests and `runClientCommand` share. */
export async function runWith(command: string, argv: string[], io: CommandIO): Promise<number> {
  let name = `tideway ${command}`
  let selected: ClientCommand | undefined
  let args = argv
  if (command === 'produce') selected = produceCommand
  else if (command === 'consume') selected = consumeCommand
  else if (Object.hasOwn(families, command)) {
    const family = families[command]!
    const [sub, ...rest] = argv
    if (sub === undefined) {
      io.stderr.write(family.usage)
      return 2
    }
    if (sub === '--help' || sub === '-h' || sub === 'help') {
      await io.stdout.write(family.usage)
      return 0
    }
    selected = Object.hasOwn(family.commands, sub) ? family.commands[sub] : undefined
    if (!selected) return usageFailure(io, name, `unknown command "${sub}" (${family.names})`)
    name = `${name} ${sub}`
    args = rest
  }
  if (!selected) return usageFailure(io, 'tideway', `unknown command "${command}"`)
  try {
    return await selected.run(args, io)
  } catch (err) {
    if (err instanceof UsageError) return usageFailure(io, name, err.message)
    if (err instanceof CommandError) {
      io.stderr.write(`tideway: ${err.message}\n`)
      return err.exitCode
    }
    throw err
  }
}

function usageFailure(io: CommandIO, name: string, message: string): number {
  io.stderr.write(`${name}: ${message}\nRun \`${name} --help\` for usage.\n`)
  return 2
}

/**
 * The real process edges. SIGINT and SIGTERM abort `stop` (a follow or a produce finishes
 * cleanly and exits 0); a second signal exits at once, for a command stuck on a dead broker.
 */
function processIO(): { io: CommandIO; dispose: () => void } {
  const controller = new AbortController()
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(signal === 'SIGINT' ? 130 : 143)
    controller.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const io: CommandIO = {
    // Lazy: creating process.stdin opens a handle, which only produce needs.
    get stdin() {
      return process.stdin
    },
    stdout: new OutputSink(process.stdout),
    stderr: process.stderr,
    env: process.env,
    stop: controller.signal,
  }
  return {
    io,
    dispose: () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    },
  }
}
