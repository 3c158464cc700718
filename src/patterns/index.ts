// Patterns built on the SDK for services that call each other; each folder exports its public
// API from its own index.ts.
export * from './circuit-breaker/index.ts'
export * from './saga/index.ts'
export * from './projection/index.ts'
