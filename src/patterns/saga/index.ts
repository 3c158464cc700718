// Durable sagas (issue 9): orchestrated, with a pure state machine (machine.ts) driven by an
// orchestrator that stores every move (orchestrator.ts, saga-store.ts) and durable timers
// (timers.ts); command/reply over topics (commands.ts); and helpers for choreographed sagas
// (choreography.ts: correlation ids, a deadline watcher, compensation handlers).
export { defineSaga, stepCorrelationId, stepIdempotencyKey, type CompensationContext, type Json, type ResolvedStep, type Saga, type SagaDefinition, type StepContext, type StepDefinition, type StepPhase, type StepRetry } from './definition.ts'
export { afterFailure, compensationPlan, nextAction, retryTimerId, SagaStatus, StepStatus, TERMINAL_STATUSES, timeoutTimerId, TimerStatus, type FailureVerdict, type InstanceSnapshot, type NextAction, type StepRecord, type TimerView } from './machine.ts'
export { migrateSagaTables, SagaTables, type InstanceSummary, type StoredInstance, type StoredTimer, type TimerSpec } from './saga-store.ts'
export { SagaTimers, type SagaTimersOptions, type TimerHandler } from './timers.ts'
export { publishBoundary, sagaChannel, SagaOrchestrator, SagaTimerKind, StepTimeout, type SagaBoundary, type SagaBoundaryEvent, type SagaOrchestratorOptions, type StartSagaOptions } from './orchestrator.ts'
export { CommandChannel, SagaHeader, serveCommands, type CommandChannelOptions, type CommandReply, type CommandService, type CommandServiceOptions, type IncomingCommand } from './commands.ts'
export { correlationIdOf, createDeadlineWatcher, DEADLINE_TIMER_KIND, DeadlineWatcher, failureEvent, failureIdempotencyKey, sagaEvent, startCompensationHandler, type ArmedDeadline, type CompensationHandlerOptions, type DeadlineWatcherOptions, type FailureEvent } from './choreography.ts'
