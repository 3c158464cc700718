// One replica of a service that runs a saga orchestrator on a PostgreSQL schema shared with
// other replicas, for the lease tests. The saga `lease-demo` has three steps; each invocation
// first appends a row to `invocations` (instance, step, idempotency key, owner, time), so the
// test sees every call, the repeated ones included; `charge` then takes --charge-ms.
//
// Usage: node saga_lease_orchestrator.ts <schema> [--owner ID] [--lease-ms N] [--charge-ms N] [--start ID...]
// Prints {"event":"started","owner":...} and {"event":"invoking",...} as each step begins;
// logs (JSON lines) go to stderr. Stops on SIGTERM.
import { parseArgs } from 'node:util'
import { jsonLogger } from '../../../src/logger.ts'
import { defineSaga } from '../../../src/patterns/saga/definition.ts'
import { SagaOrchestrator } from '../../../src/patterns/saga/orchestrator.ts'
import { postgresStore } from '../../../src/stores/postgres.ts'
import { PG_URL } from './saga_fixtures.ts'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    owner: { type: 'string' },
    'lease-ms': { type: 'string', default: '15000' },
    'charge-ms': { type: 'string', default: '50' },
    start: { type: 'string', multiple: true, default: [] },
  },
})
const [schema] = positionals
const chargeMs = Number(values['charge-ms'])
const emit = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + '\n')

const store = postgresStore({ connectionString: PG_URL, searchPath: schema! })
await store.transaction((tx) =>
  tx.query(`CREATE TABLE IF NOT EXISTS invocations (instance TEXT NOT NULL, step TEXT NOT NULL, key TEXT NOT NULL, owner TEXT NOT NULL, at BIGINT NOT NULL)`),
)
let orchestrator: SagaOrchestrator
const step = (name: string, ms: number) => ({
  name,
  timeoutMs: 20_000,
  invoke: async (ctx: { instanceId: string; idempotencyKey: string }) => {
    emit({ event: 'invoking', instance: ctx.instanceId, step: name, owner: orchestrator.owner })
    await store.transaction((tx) => tx.query(`INSERT INTO invocations VALUES ($1, $2, $3, $4, $5)`, [ctx.instanceId, name, ctx.idempotencyKey, orchestrator.owner, Date.now()]))
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms))
    return name
  },
})
const saga = defineSaga({ name: 'lease-demo', version: 1, steps: [step('reserve', 0), step('charge', chargeMs), step('notify', 0)] })
orchestrator = new SagaOrchestrator({
  store,
  sagas: [saga],
  ...(values.owner ? { owner: values.owner } : {}),
  leaseMs: Number(values['lease-ms']),
  sweepIntervalMs: 100,
  timerPollIntervalMs: 100,
  logger: jsonLogger({ level: 'info' }),
})
await orchestrator.start()
emit({ event: 'started', owner: orchestrator.owner, pid: process.pid })
for (const id of values.start) await orchestrator.startSaga('lease-demo', id, null)

process.once('SIGTERM', () => {
  void orchestrator
    .stop()
    .then(() => store.close())
    .then(() => process.exit(0))
})
