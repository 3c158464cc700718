// `tideway broker`: starts the broker and shuts it down gracefully on SIGTERM or SIGINT (stop
// accepting, finish in-flight requests, sync, exit 0). A second signal exits at once.
import { startBroker } from '../broker/broker.ts'
import { configHelp, loadConfig } from '../broker/config.ts'
import { isTidewayError } from '../errors.ts'
import { jsonLogger } from '../logger.ts'

export async function runBroker(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`Usage: tideway broker [options]\n\n${configHelp()}\n`)
    return 0
  }
  let config
  try {
    config = loadConfig(argv)
  } catch (err) {
    if (isTidewayError(err, 'TIDEWAY_ERR_CONFIG')) {
      process.stderr.write(`tideway broker: ${err.message}\n`)
      return 2
    }
    throw err
  }
  const logger = jsonLogger({ level: config.logLevel })
  let broker
  try {
    broker = await startBroker({ ...config, logger })
  } catch (err) {
    logger.error('broker failed to start', { err })
    return 1
  }
  const running = broker
  return new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn('second signal: exiting without a graceful shutdown', { signal })
        process.exit(1)
      }
      stopping = true
      logger.info('shutting down', { signal })
      running.close().then(
        () => resolve(0),
        (err: unknown) => {
          logger.error('shutdown failed', { err })
          resolve(1)
        },
      )
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
  })
}
