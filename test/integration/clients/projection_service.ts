// The customer_totals projection (projection_model.ts) as a service in its own process, for the
// tests that kill it with kill -9. It prints JSON lines on stdout:
//   {"event":"started","generation":n,"rebuilding":n|null}   once start() resolved
//   {"event":"rebuild","phase":"began"|…,"generation":n}      each rebuild step as it commits
//   {"event":"rebuilt","generation":n,"applied":n}            rebuild() resolved
//   {"event":"lag","total":n,"rebuild":n|null}                every --poll-ms
// --die-at makes it SIGKILL itself at one point, so a crash lands exactly there:
//   <phase>       right after that rebuild step committed (before the next begins)
//   applying:<n>  inside the transaction of the n-th event it applies to a generation being rebuilt
// It exits by itself after --lifetime-ms, and on SIGTERM stops the projection first.
//
// Usage: node projection_service.ts <bootstrap> <db> <orders-topic> <payments-topic> <group-prefix>
//        db: sqlite:<file> | postgres:<schema>   [--rebuild] [--die-at …] [--poll-ms N] [--lifetime-ms N]
import { parseArgs } from 'node:util'
import { jsonLogger, type LogLevel } from '../../../src/index.ts'
import { createProjection } from '../../../src/patterns/projection/index.ts'
import { customerTotalsDefinition, openStore } from './projection_model.ts'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    rebuild: { type: 'boolean', default: false },
    'die-at': { type: 'string' },
    'poll-ms': { type: 'string', default: '100' },
    'lifetime-ms': { type: 'string', default: '120000' },
    'log-level': { type: 'string', default: 'silent' },
  },
})
const [bootstrap, db, ordersTopic, paymentsTopic, groupIdPrefix] = positionals
if (!bootstrap || !db || !ordersTopic || !paymentsTopic || !groupIdPrefix) {
  process.stderr.write('usage: projection_service.ts <bootstrap> <db> <orders-topic> <payments-topic> <group-prefix>\n')
  process.exit(2)
}

const emit = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + '\n')
const die = () => process.kill(process.pid, 'SIGKILL')
const dieAt = values['die-at']
const dieAfterApplies = dieAt?.startsWith('applying:') ? Number(dieAt.slice('applying:'.length)) : null

const store = openStore(db)
let rebuildApplies = 0
const projection = createProjection({
  ...customerTotalsDefinition(store.dialect, (tables) => {
    if (dieAfterApplies === null || projection.status().rebuilding === null) return
    if (!tables.customer_totals.endsWith(`_v${projection.status().rebuilding}`)) return
    if (++rebuildApplies === dieAfterApplies) die()
  }),
  bootstrap,
  store,
  topics: [ordersTopic, paymentsTopic],
  groupIdPrefix,
  pollIntervalMs: Number(values['poll-ms']),
  logger: jsonLogger({ level: values['log-level'] as LogLevel }),
  // Static membership: a restarted process takes its partitions back at once.
  consumer: { groupInstanceId: 'projection-1', sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 },
})
projection.on('rebuild', (e) => {
  emit({ event: 'rebuild', phase: e.phase, generation: e.generation })
  if (e.phase === dieAt) die()
})
projection.on('lag', (lag) => emit({ event: 'lag', total: lag.total, rebuild: lag.rebuild?.total ?? null }))

await projection.start()
emit({ event: 'started', generation: projection.status().generation, rebuilding: projection.status().rebuilding })
if (values.rebuild) {
  const result = await projection.rebuild()
  emit({ event: 'rebuilt', generation: result.generation, applied: result.applied })
}

const stop = async () => {
  await projection.stop()
  await store.close()
  process.exit(0)
}
process.once('SIGTERM', () => void stop())
setTimeout(() => void stop(), Number(values['lifetime-ms'])).unref()
