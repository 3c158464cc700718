// Tideway's public entry point.
export { startBroker, type RunningBroker, type StartBrokerOptions } from './broker/broker.ts'
export type { BrokerConfig, FlushPolicy } from './broker/config.ts'
export { TidewayError, TidewayErrorCodes, type TidewayErrorCode } from './errors.ts'
export { jsonLogger, silentLogger, type Logger, type LogLevel } from './logger.ts'
export * from './sdk/index.ts'
export { sqliteStore, type SqliteStoreOptions } from './stores/sqlite.ts'
export { postgresStore, type PostgresStoreOptions } from './stores/postgres.ts'
export * from './patterns/index.ts'
