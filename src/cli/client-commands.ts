// `tideway topics|produce|consume`: the client commands. They speak the Kafka protocol through
// @platformatic/kafka only (never broker internals), so they work against any Kafka cluster.
//
// Exit codes: 0 done, 1 the operation failed (unreachable broker, unknown topic, refused
// request), 2 usage error (bad flags or arguments). An expected failure is one line on stderr,
// `tideway: <what went wrong>`; only an unexpected exception (our bug) prints a stack trace.
import type { ClientCommand, CommandIO } from './command.ts'
import { consumeCommand } from './consume-command.ts'
import { CommandError, UsageError } from './errors.ts'
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

export async function runClientCommand(command: 'topics' | 'produce' | 'consume', argv: string[]): Promise<number> {
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
  else if (command === 'topics') {
    const [sub, ...rest] = argv
    if (sub === undefined) {
      io.stderr.write(topicsUsage)
      return 2
    }
    if (sub === '--help' || sub === '-h' || sub === 'help') {
      await io.stdout.write(topicsUsage)
      return 0
    }
    selected = topicsCommands[sub]
    if (!selected) return usageFailure(io, name, `unknown command "${sub}" (create, list, describe or delete)`)
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
