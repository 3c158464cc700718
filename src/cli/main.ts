// `tideway <command>`: the broker itself, plus client commands (topics, groups, produce, consume)
// that speak the Kafka protocol through @platformatic/kafka, so they work against any
// Kafka-protocol cluster, not only Tideway.
import { runBroker } from './broker-command.ts'

const usage = `Usage: tideway <command> [options]

Commands:
  broker                 run the broker (what \`npm start\` runs); --help lists its options
  topics <sub>           create | list | describe | alter | delete topics
  groups <sub>           list | describe | delete consumer groups, reset their offsets
  dlq <sub>              list | show | redrive dead-letter topics of the SDK's consumers
  breakers <sub>         list the circuit breakers shared through Redis, with their state
  sagas <sub>            list | show saga instances (status, steps, timers)
  produce <topic>        send stdin lines as records
  consume <topic>        print records

Run \`tideway <command> --help\` for a command's options.`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'broker':
      return runBroker(rest)
    case 'topics':
    case 'groups':
    case 'dlq':
    case 'breakers':
    case 'produce':
    case 'consume': {
      const { runClientCommand } = await import('./client-commands.ts')
      return runClientCommand(command, rest)
    }
    case 'sagas': {
      const { runSagasCommand } = await import('./sagas-command.ts')
      return runSagasCommand(rest)
    }
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(usage + '\n')
      return command === undefined ? 1 : 0
    default:
      process.stderr.write(`unknown command "${command}"\n\n${usage}\n`)
      return 1
  }
}

process.exitCode = await main(process.argv.slice(2))
