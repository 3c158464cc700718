// The reporting service: a CQRS read model of what each account ordered and was charged, fed
// from orders' `orders.placed` and billing's confirmations. It is a projection: each event's
// update and the offset it moves commit in one transaction, so a kill -9 neither counts an event
// twice nor skips one. A confirmation of a charge billing had already applied (an is_retry)
// carries `applied: false` and changes nothing, so the model counts each charge once.
// Readers query the view `account_totals` like any table.
import { createProjection, sqliteStore } from '../../../src/index.ts'
import { dbPath, emit, onShutdown, serviceLogger, shopConfig, Topic } from '../common.ts'

type ShopEvent =
  | { order_id: string; account: string; amount: number; applied?: undefined }
  | { sequence_key: string; order_id: string; account: string; amount: number; applied: boolean }

const config = shopConfig()
const logger = serviceLogger('reporting')
const store = sqliteStore(dbPath(config.dataDir, 'reporting'))

const totals = createProjection<ShopEvent>({
  name: 'account_totals',
  bootstrap: config.bootstrap,
  topics: [Topic.ordersPlaced, Topic.confirmations],
  store,
  logger,
  groupIdPrefix: 'shop-reporting',
  consumer: { deadLetter: false, sessionTimeoutMs: 6_000, groupInstanceId: 'reporting-1' },
  decode: (value) => JSON.parse(value!.toString()) as ShopEvent,
  setup: async (tx, t) => {
    await tx.query(`CREATE TABLE ${t.account_totals} (account TEXT PRIMARY KEY, orders INTEGER NOT NULL, ordered_cents INTEGER NOT NULL,
                      charges INTEGER NOT NULL, charged_cents INTEGER NOT NULL)`)
  },
  apply: async (event, tx, t) => {
    const e = event.body
    const placed = e.applied === undefined
    if (!placed && !e.applied) return
    await tx.query(
      `INSERT INTO ${t.account_totals} VALUES (?, ?, ?, ?, ?) ON CONFLICT (account) DO UPDATE SET
         orders = orders + excluded.orders, ordered_cents = ordered_cents + excluded.ordered_cents,
         charges = charges + excluded.charges, charged_cents = charged_cents + excluded.charged_cents`,
      placed ? [e.account, 1, e.amount, 0, 0] : [e.account, 0, 0, 1, e.amount],
    )
  },
})
await totals.start()
emit({ event: 'ready' })

onShutdown(async () => {
  await totals.stop()
  await store.close()
})
