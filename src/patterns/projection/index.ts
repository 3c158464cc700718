// CQRS projections: read models fed from topics, each event's update and its offset in one
// transaction of the user's database, rebuilt by replay into fresh tables and a swap of views.
export {
  createProjection,
  Projection,
  RebuildPhase,
  type GenerationLag,
  type ProjectionConsumerOptions,
  type ProjectionEvents,
  type ProjectionLag,
  type ProjectionOptions,
  type ProjectionStatus,
  type ProjectionTables,
  type RebuildEvent,
  type RebuildResult,
} from './projection.ts'
export { GenerationClosed, ProjectionVersionError } from './errors.ts'
export type { PartitionLag } from './lifecycle.ts'
