// An in-process broker on a free port with a temporary data directory, for integration tests.
import { startBroker, type RunningBroker, type StartBrokerOptions } from '../../src/broker/broker.ts'
import { silentLogger } from '../../src/logger.ts'
import { tempDir } from './broker-process.ts'
import { RawClient } from './raw-client.ts'

export interface EmbeddedBroker extends RunningBroker {
  readonly dataDir: string
  /** Closes the broker and removes its data directory. */
  dispose(): Promise<void>
}

export async function embeddedBroker(options: StartBrokerOptions = {}): Promise<EmbeddedBroker> {
  const dir = tempDir()
  const broker = await startBroker({ port: 0, dataDir: dir.path, logger: silentLogger, ...options })
  return Object.assign(Object.create(broker) as RunningBroker, broker, {
    dataDir: dir.path,
    async dispose() {
      await broker.close()
      dir.remove()
    },
  })
}

let counter = 0
/** A topic or group name unique to this test run. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`
}

/**
 * For tests that restart a broker on one data directory and talk to it raw: each `start()` opens
 * a broker on `dataDir` and a RawClient to it; `closeAll()` (for an after hook) closes every one.
 */
export function restartableBroker(dataDir: string, options: StartBrokerOptions = {}) {
  const open: { close(): unknown }[] = []
  return {
    async start(): Promise<{ broker: RunningBroker; client: RawClient }> {
      const broker = await startBroker({ port: 0, dataDir, logger: silentLogger, ...options })
      open.push(broker)
      const client = await RawClient.connect(broker.bootstrap)
      open.push({ close: () => client.socket.destroy() })
      return { broker, client }
    },
    async closeAll(): Promise<void> {
      for (const c of open.splice(0).reverse()) await c.close()
    },
  }
}
