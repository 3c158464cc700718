// The report: per scenario, what the clients' ledger says was sent and acknowledged, next to the
// effects each service recorded in its own database, and whether the delivery mode's promise held.
// Counts are read from the databases, never assumed: a lost message is one acknowledged at the
// source with no effect; a duplicate is an effect logged more than once (the effect logs have no
// unique keys, so a repeat cannot hide). Run it while the shop is draining to see what is still
// on its way (`settled`), and after it stopped for the verdict.
import { existsSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'
import { dbPath, MAX_AUTHORISATIONS, type ServiceName } from './common.ts'

export const PROMISES = {
  'at-most-once': 'may lose, never repeats',
  'at-least-once': 'never loses, may repeat',
  'exactly-once': 'never loses, never repeats',
  breaker: 'failed calls retried or rejected, never lost',
} as const
type Mode = keyof typeof PROMISES

export interface ScenarioReport {
  readonly scenario: string
  readonly mode: Mode
  readonly promise: string
  readonly sent: number
  readonly acked: number
  readonly effects: number
  readonly lost: number
  readonly duplicated: number
  readonly ok: boolean
  readonly details: string
  readonly figures: Readonly<Record<string, number>>
}

export interface Measurement {
  readonly scenarios: ScenarioReport[]
  /** What is still on its way; empty once everything acknowledged has had its effect. */
  readonly unsettled: string[]
}

type Row = Record<string, unknown>

/** Rows of `sql` in a service's database, read-only; none when the table does not exist yet. */
function reader(dataDir: string) {
  const open = new Map<string, DatabaseSync | null>()
  const db = (service: ServiceName | 'load') => {
    if (!open.has(service)) {
      const path = dbPath(dataDir, service)
      open.set(service, existsSync(path) ? new DatabaseSync(path, { readOnly: true, timeout: 5_000 }) : null)
    }
    return open.get(service)!
  }
  return {
    rows<T = Row>(service: ServiceName | 'load', sql: string): T[] {
      try {
        return (db(service)?.prepare(sql).all() ?? []) as T[]
      } catch (err) {
        if (/no such table/.test(String(err))) return []
        throw err
      }
    },
    close() {
      for (const d of open.values()) d?.close()
    },
  }
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>()
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1)
  return counts
}

const repeats = (counts: Map<string, number>) => [...counts.values()].reduce((sum, n) => sum + Math.max(0, n - 1), 0)

function row(scenario: string, mode: Mode, fields: Omit<ScenarioReport, 'scenario' | 'mode' | 'promise' | 'ok'>, extraOk = true): ScenarioReport {
  const kept = mode === 'at-most-once' ? fields.duplicated === 0 : mode === 'exactly-once' ? fields.lost === 0 && fields.duplicated === 0 : fields.lost === 0
  return { scenario, mode, promise: PROMISES[mode], ...fields, ok: kept && extraOk }
}

export function measure(dataDir: string): Measurement {
  const db = reader(dataDir)
  try {
    const ledger = (scenario: string) => {
      const all = db.rows<{ id: string; acked: number }>('load', `SELECT id, acked FROM requests WHERE scenario = '${scenario}'`)
      return { sent: all.length, acked: new Set(all.filter((r) => r.acked).map((r) => r.id)) }
    }
    const unsettled: string[] = []

    // Orders and the breaker: every acknowledged order ends accepted or rejected.
    const orderLedger = ledger('orders')
    const orders = new Map(db.rows<{ id: string; account: string; amount: number; status: string }>('orders', 'SELECT id, account, amount, status FROM orders').map((o) => [o.id, o]))
    const byStatus = countBy([...orders.values()], (o) => o.status)
    const calls = countBy(db.rows<{ outcome: string }>('orders', 'SELECT outcome FROM provider_calls'), (c) => c.outcome)
    const transitions = db.rows<{ to_state: string }>('orders', 'SELECT to_state FROM breaker_transitions WHERE observed = 0')
    const opened = transitions.filter((t) => t.to_state === 'open').length
    const ackedOrders = [...orderLedger.acked].map((id) => orders.get(id))
    const undecided = ackedOrders.filter((o) => !o || o.status === 'pending').length
    if ((byStatus.get('pending') ?? 0) > 0) unsettled.push(`${byStatus.get('pending')} orders awaiting authorisation`)
    const orderRow = row('orders → payment provider (breaker)', 'breaker', {
      sent: orderLedger.sent,
      acked: orderLedger.acked.size,
      effects: ackedOrders.length - undecided,
      lost: undecided,
      duplicated: 0,
      details:
        `${byStatus.get('accepted') ?? 0} accepted, ${byStatus.get('rejected') ?? 0} rejected after ${MAX_AUTHORISATIONS} failed authorisations; ` +
        `provider calls ${calls.get('ok') ?? 0} ok, ${calls.get('failed') ?? 0} failed, ${calls.get('timeout') ?? 0} timed out, ` +
        `${calls.get('short-circuited') ?? 0} short-circuited; breaker opened ${opened}x (${transitions.length} transitions)`,
      figures: {
        accepted: byStatus.get('accepted') ?? 0,
        rejected: byStatus.get('rejected') ?? 0,
        shortCircuited: calls.get('short-circuited') ?? 0,
        failedCalls: (calls.get('failed') ?? 0) + (calls.get('timeout') ?? 0),
        opened,
        transitions: transitions.length,
      },
    })

    // Billing: each accepted order's charge applied exactly once, balances equal to the charges.
    const charges = db.rows<{ sequence_key: string; order_id: string; sends: number; confirmed_at: number | null }>('orders', 'SELECT sequence_key, order_id, sends, confirmed_at FROM charges')
    const applied = db.rows<{ sequence_key: string; account: string; amount: number }>('billing', 'SELECT sequence_key, account, amount FROM applied')
    const appliedCounts = countBy(applied, (a) => a.sequence_key)
    const expected = charges.filter((c) => orders.get(c.order_id)?.status === 'accepted')
    const missing = expected.filter((c) => !appliedCounts.has(c.sequence_key)).length
    const distinctSum = new Map<string, number>()
    const seen = new Set<string>()
    for (const a of applied) {
      if (seen.has(a.sequence_key)) continue
      seen.add(a.sequence_key)
      distinctSum.set(a.account, (distinctSum.get(a.account) ?? 0) + a.amount)
    }
    const balances = db.rows<{ account: string; cents: number }>('billing', 'SELECT account, cents FROM balances')
    const accounts = new Set([...balances.map((b) => b.account), ...distinctSum.keys()])
    const balanceOf = new Map(balances.map((b) => [b.account, b.cents]))
    const wrongBalances = [...accounts].filter((a) => (balanceOf.get(a) ?? 0) !== (distinctSum.get(a) ?? 0)).length
    const resends = charges.reduce((sum, c) => sum + c.sends - 1, 0)
    const replays = db.rows<{ n: number }>('billing', 'SELECT COUNT(*) AS n FROM charge_messages WHERE applied = 0')[0]?.n ?? 0
    const unconfirmed = charges.filter((c) => c.confirmed_at === null).length
    if (unconfirmed > 0) unsettled.push(`${unconfirmed} charges not confirmed by billing`)
    const billingRow = row(
      'billing (orders → billing)',
      'exactly-once',
      {
        sent: expected.length,
        acked: expected.length,
        effects: [...appliedCounts.keys()].length,
        lost: missing,
        duplicated: repeats(appliedCounts),
        details:
          `charges of accepted orders; ${resends} resent with is_retry, ${replays} answered from the stored sequence_key; ` +
          (wrongBalances === 0 ? `all ${accounts.size} balances equal their distinct charges` : `${wrongBalances} balances differ from their charges`),
        figures: { resends, replays, wrongBalances },
      },
      wrongBalances === 0,
    )

    // The saga: every instance completed or compensated, each step's effect at most once.
    const subLedger = ledger('subscriptions')
    const instances = db.rows<{ instance_id: string; status: string; failed_step: string | null }>('subscription', 'SELECT instance_id, status, failed_step FROM tideway_saga_instances')
    const effects = new Map<string, Map<string, number>>()
    const note = (instance: string, action: string) => {
      const counts = effects.get(instance) ?? new Map<string, number>()
      counts.set(action, (counts.get(action) ?? 0) + 1)
      effects.set(instance, counts)
    }
    for (const e of db.rows<{ instance: string; action: string }>('subscription', 'SELECT instance, action FROM subscription_effects')) note(e.instance, e.action)
    for (const e of db.rows<{ instance: string; action: string }>('billing', 'SELECT instance, action FROM payment_effects')) note(e.instance, e.action)
    for (const e of db.rows<{ instance: string }>('notification', 'SELECT instance FROM welcome_effects')) note(e.instance, 'welcome')
    const known = new Set(instances.map((i) => i.instance_id))
    let stuck = 0
    let halfApplied = 0
    let sagaDuplicates = 0
    for (const instance of instances) {
      const n = (action: string) => effects.get(instance.instance_id)?.get(action) ?? 0
      sagaDuplicates += ['create', 'cancel', 'charge', 'refund', 'welcome'].reduce((sum, a) => sum + Math.max(0, n(a) - 1), 0)
      const once = (a: string) => Math.min(n(a), 1)
      if (instance.status === 'completed') {
        if (once('create') !== 1 || once('charge') !== 1 || once('welcome') !== 1 || n('cancel') + n('refund') > 0) halfApplied++
      } else if (instance.status === 'compensated') {
        if (once('cancel') !== once('create') || once('refund') !== once('charge') || n('welcome') > 0) halfApplied++
      } else stuck++
    }
    const neverStarted = [...subLedger.acked].filter((id) => !known.has(id)).length
    const sagaStatus = countBy(instances, (i) => i.status)
    const failedAt = countBy(
      instances.filter((i) => i.status === 'compensated'),
      (i) => i.failed_step ?? '?',
    )
    if (stuck > 0) unsettled.push(`${stuck} sagas running or compensating`)
    const refunds = [...effects.values()].filter((e) => (e.get('refund') ?? 0) > 0).length
    const sagaRow = row('subscription saga (orchestrated)', 'exactly-once', {
      sent: subLedger.sent,
      acked: subLedger.acked.size,
      effects: (sagaStatus.get('completed') ?? 0) + (sagaStatus.get('compensated') ?? 0),
      lost: neverStarted + stuck + halfApplied,
      duplicated: sagaDuplicates,
      details:
        `${sagaStatus.get('completed') ?? 0} completed, ${sagaStatus.get('compensated') ?? 0} compensated ` +
        `(${failedAt.get('payment') ?? 0} declined, ${failedAt.get('notification') ?? 0} mail bounced and refunded, ${failedAt.get('subscription') ?? 0} at the first step); ` +
        `${refunds} refunds; ${stuck} unfinished, ${halfApplied} half-applied, ${sagaStatus.get('failed-compensation') ?? 0} failed-compensation`,
      figures: {
        completed: sagaStatus.get('completed') ?? 0,
        compensated: sagaStatus.get('compensated') ?? 0,
        refunds,
        stuck,
        halfApplied,
      },
    })

    // Notifications: at-least-once delivery, an idempotent effect.
    const pushLedger = ledger('notifications')
    const deliveries = countBy(db.rows<{ id: string }>('notification', 'SELECT id FROM deliveries'), (d) => d.id)
    const sent = new Set(db.rows<{ id: string }>('notification', 'SELECT id FROM sent').map((s) => s.id))
    const undelivered = [...pushLedger.acked].filter((id) => !sent.has(id)).length
    if (undelivered > 0) unsettled.push(`${undelivered} notifications not delivered yet`)
    const deliveryCount = [...deliveries.values()].reduce((a, b) => a + b, 0)
    const notificationRow = row('notifications', 'at-least-once', {
      sent: pushLedger.sent,
      acked: pushLedger.acked.size,
      effects: sent.size,
      lost: undelivered,
      duplicated: repeats(deliveries),
      details: `${deliveryCount} deliveries of ${deliveries.size} messages; the idempotent handler made ${sent.size} effects, one per message`,
      figures: { deliveries: deliveryCount },
    })

    // Location pings: at-most-once.
    const pingLedger = ledger('pings')
    const handled = countBy(db.rows<{ id: string }>('location', 'SELECT id FROM pings'), (p) => p.id)
    const pingsLost = [...pingLedger.acked].filter((id) => !handled.has(id)).length
    const locationRow = row('location pings', 'at-most-once', {
      sent: pingLedger.sent,
      acked: pingLedger.acked.size,
      effects: handled.size,
      lost: pingsLost,
      duplicated: repeats(handled),
      details: `${pingLedger.sent - pingLedger.acked.size} sends failed at the source (one attempt each); ${pingsLost} acknowledged pings never handled`,
      figures: {},
    })

    // The read model against a direct computation from orders' and billing's own tables.
    type Totals = { orders: number; ordered: number; charges: number; charged: number }
    const direct = new Map<string, Totals>()
    const totalsOf = (account: string) => direct.get(account) ?? direct.set(account, { orders: 0, ordered: 0, charges: 0, charged: 0 }).get(account)!
    for (const o of orders.values()) {
      if (o.status !== 'accepted') continue
      totalsOf(o.account).orders++
      totalsOf(o.account).ordered += o.amount
    }
    const counted = new Set<string>()
    for (const a of applied) {
      if (counted.has(a.sequence_key)) continue
      counted.add(a.sequence_key)
      totalsOf(a.account).charges++
      totalsOf(a.account).charged += a.amount
    }
    const projected = new Map(
      db
        .rows<{ account: string; orders: number; ordered_cents: number; charges: number; charged_cents: number }>('reporting', 'SELECT * FROM account_totals')
        .map((p) => [p.account, { orders: p.orders, ordered: p.ordered_cents, charges: p.charges, charged: p.charged_cents }]),
    )
    let behind = 0
    let ahead = 0
    let centsDiffer = 0
    for (const account of new Set([...direct.keys(), ...projected.keys()])) {
      const d = direct.get(account) ?? { orders: 0, ordered: 0, charges: 0, charged: 0 }
      const p = projected.get(account) ?? { orders: 0, ordered: 0, charges: 0, charged: 0 }
      behind += Math.max(0, d.orders - p.orders) + Math.max(0, d.charges - p.charges)
      ahead += Math.max(0, p.orders - d.orders) + Math.max(0, p.charges - d.charges)
      if (d.ordered !== p.ordered || d.charged !== p.charged) centsDiffer++
    }
    const sum = (m: Map<string, Totals>) => [...m.values()].reduce((s, t) => s + t.orders + t.charges, 0)
    if (behind + ahead + centsDiffer > 0) unsettled.push(`the read model differs from the services' tables by ${behind + ahead} events`)
    const projectionRow = row(
      'reporting read model (projection)',
      'exactly-once',
      {
        sent: sum(direct),
        acked: sum(direct),
        effects: sum(projected),
        lost: behind,
        duplicated: ahead,
        details: `orders and charges per account in the view account_totals, against orders' and billing's own tables: ${centsDiffer === 0 ? 'equal' : `${centsDiffer} accounts' amounts differ`} over ${direct.size} accounts`,
        figures: { accounts: direct.size, centsDiffer },
      },
      centsDiffer === 0,
    )

    return { scenarios: [billingRow, sagaRow, projectionRow, notificationRow, locationRow, orderRow], unsettled }
  } finally {
    db.close()
  }
}

export function formatTable(scenarios: readonly ScenarioReport[]): string {
  const header = ['scenario', 'mode', 'promise', 'sent', 'acked', 'effects', 'lost', 'duplicated', 'verdict']
  const rows = scenarios.map((s) => [s.scenario, s.mode, s.promise, s.sent, s.acked, s.effects, s.lost, s.duplicated, s.ok ? 'OK' : 'BROKEN'].map(String))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const numeric = (i: number) => i >= 3 && i <= 7
  const line = (cells: string[]) => cells.map((c, i) => (numeric(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()
  const notes = scenarios.map((s) => `  ${s.scenario}: ${s.details}`)
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), '', ...notes].join('\n')
}
