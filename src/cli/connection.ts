// How the client commands reach a cluster: the bootstrap address (flag, then TIDEWAY_BOOTSTRAP,
// then the broker's default address) and the client options shared by every command. The
// timeouts and retries are small so an unreachable broker fails in seconds, not minutes.
import type { BaseOptions } from '@platformatic/kafka'
import { UsageError } from './errors.ts'

export const DEFAULT_BOOTSTRAP = '127.0.0.1:9092'

/** Bounds for every client the CLI creates. */
const CLIENT_LIMITS = {
  /** TCP connect, per attempt. */
  connectTimeout: 5_000,
  /** Waiting for one response. Produce waits for the broker's fsync, so leave room for a slow disk. */
  timeout: 15_000,
  /** Retries of a retriable failure (connection refused, leader moving), so at most 3 attempts. */
  retries: 2,
  retryDelay: 250,
} as const

export interface Connection {
  /** As given, for messages: `127.0.0.1:9092` or `a:9092,b:9092`. */
  readonly bootstrap: string
  readonly clientOptions: BaseOptions
}

export function resolveConnection(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Connection {
  const bootstrap = (flag ?? env['TIDEWAY_BOOTSTRAP'] ?? DEFAULT_BOOTSTRAP).trim()
  const brokers = bootstrap.split(',').map((b) => b.trim())
  for (const broker of brokers) {
    // host:port, where host may be a bracketed IPv6 literal.
    const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(broker)
    if (!match || Number(match[2]) > 65535) {
      throw new UsageError(`--bootstrap takes host:port[,host:port...], got "${bootstrap}"`)
    }
  }
  return {
    bootstrap,
    clientOptions: { clientId: 'tideway-cli', bootstrapBrokers: brokers, ...CLIENT_LIMITS },
  }
}
