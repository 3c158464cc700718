// An orchestrator process for the saga crash test: runs the subscription saga (saga_fixtures.ts)
// against PostgreSQL schema <schema> and the broker, starts the instances given on the command
// line (starting is idempotent by id, so a restarted process passes the same ones), and either
// kills itself with SIGKILL at the first boundary matching --crash-at, or, with --until-settled,
// exits 0 once every instance in the store is completed, compensated or failed-compensation.
//
// The kill is synchronous inside the `tideway:saga` diagnostics channel's publish, so the process
// dies exactly at that boundary, with nothing after it recorded.
//
// Usage: node saga_orchestrator.ts <schema> <bootstrap> <prefix> <id>=<cents>... [--crash-at BOUNDARY:PHASE:STEP] [--until-settled]
// Prints {"event":"started"}, and {"event":"settled","statuses":{...}} before exiting 0.
import { subscribe } from 'node:diagnostics_channel'
import { parseArgs } from 'node:util'
import { CommandChannel } from '../../../src/patterns/saga/commands.ts'
import { SagaOrchestrator, type SagaBoundaryEvent } from '../../../src/patterns/saga/orchestrator.ts'
import { SagaTables } from '../../../src/patterns/saga/saga-store.ts'
import { postgresStore } from '../../../src/stores/postgres.ts'
import { PG_URL, subscriptionSaga } from './saga_fixtures.ts'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { 'crash-at': { type: 'string' }, 'until-settled': { type: 'boolean', default: false } },
})
const [schema, bootstrap, prefix, ...instances] = positionals
const emit = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + '\n')

const crashAt = values['crash-at']
if (crashAt) {
  const [boundary, phase, step] = crashAt.split(':')
  subscribe('tideway:saga', (message) => {
    const event = message as SagaBoundaryEvent
    if (event.boundary === boundary && (event.phase ?? '') === (phase ?? '') && (event.step ?? '') === (step ?? '')) {
      process.stdout.write(JSON.stringify({ event: 'crashing', at: crashAt, instanceId: event.instanceId }) + '\n')
      process.kill(process.pid, 'SIGKILL')
    }
  })
}

const store = postgresStore({ connectionString: PG_URL, searchPath: schema! })
const commands = new CommandChannel({ bootstrap: bootstrap!, replyTopic: `${prefix}.replies`, groupInstanceId: `${prefix}-orchestrator`, sessionTimeoutMs: 6_000 })
const orchestrator = new SagaOrchestrator({ store, sagas: [subscriptionSaga(commands, prefix!)], timerPollIntervalMs: 100, sweepIntervalMs: 500 })
await commands.start()
await orchestrator.start()
emit({ event: 'started' })
for (const spec of instances) {
  const [id, cents] = spec.split('=')
  await orchestrator.startSaga('subscribe', id!, { user: `user-${id}`, plan: 'pro', cents: Number(cents) })
}

if (values['until-settled']) {
  const tables = new SagaTables(store)
  for (;;) {
    const active = await store.transaction((tx) => tables.activeInstanceIds(tx))
    if (active.length === 0) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const all = await store.transaction((tx) => tables.listInstances(tx))
  emit({ event: 'settled', statuses: Object.fromEntries(all.map((i) => [i.instanceId, i.status])) })
  await orchestrator.stop()
  await commands.stop()
  await store.close()
}
