// The shape shared by the client commands: a declared spec, an action, and the process edges
// (stdin, stdout, stderr, environment, a stop signal) passed in rather than reached for, so the
// actions never touch `process` themselves.
import type { Readable, Writable } from 'node:stream'
import { commonOptions, parseCommand, renderHelp, type CommandSpec, type OptionSpecs, type ParsedOptions } from './args.ts'
import { explainClientError, type FailureContext } from './errors.ts'
import type { OutputSink } from './output.ts'

export interface CommandIO {
  readonly stdin: Readable
  readonly stdout: OutputSink
  /** For people: summaries, progress, errors. Data goes to stdout. */
  readonly stderr: Writable
  readonly env: NodeJS.ProcessEnv
  /** Aborted on SIGINT or SIGTERM: long-running commands finish cleanly and exit 0. */
  readonly stop: AbortSignal
}

export type CommandOptions<O extends OptionSpecs> = ParsedOptions<O & typeof commonOptions>

export interface ClientCommand {
  readonly spec: CommandSpec<OptionSpecs>
  run(argv: string[], io: CommandIO): Promise<number>
}

export function defineCommand<const O extends OptionSpecs>(
  spec: CommandSpec<O>,
  action: (io: CommandIO, positionals: string[], options: CommandOptions<O>) => Promise<number>,
): ClientCommand {
  return {
    spec,
    async run(argv, io) {
      const parsed = parseCommand(spec, argv)
      if (parsed.help) {
        await io.stdout.write(renderHelp(spec))
        return 0
      }
      return action(io, parsed.positionals, parsed.options)
    },
  }
}

/** Runs one client operation, turning a Kafka client failure into a one-line CommandError. */
export async function clientCall<T>(context: FailureContext, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (err) {
    throw explainClientError(err, context) ?? err
  }
}

export { commonOptions }
