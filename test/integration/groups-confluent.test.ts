// python confluent-kafka (librdkafka) consumer groups of three real processes against a real
// broker process:
// 1. eager (range assignor): 30,000 records over 6 partitions; one member is kill -9ed while it
//    still has work; the survivors take its partitions within the session timeout, every record
//    is processed, no partition has two owners at once, and only uncommitted work is read twice;
// 2. cooperative-sticky (librdkafka's incremental rebalancing): a member closes cleanly; the
//    others get its partitions at once (long before a 30 s session timeout could expire) and,
//    being incremental, never give up the partitions they already had.
// 3. static membership (group.instance.id, KIP-345): a member kill -9ed and restarted with the
//    same instance id gets its partitions back without a rebalance: the other member is never
//    asked to give anything up.
// The checks are in test/helpers/group-history.ts.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { checkExclusiveOwnership, checkGroupHistory } from '../helpers/group-history.ts'
import { allProcessed, historyOf, MemberProcess } from '../helpers/group-member-process.ts'
import { PYTHON, requirePythonKafka } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs

const MEMBER_SCRIPT = fileURLToPath(new URL('./clients/confluent_member.py', import.meta.url))
const PARTITIONS = 6

const dir = tempDir()
const broker = new BrokerProcess(dir.path)
const members: MemberProcess[] = []
let producer: kafkajs.Producer

before(async () => {
  requirePythonKafka()
  await broker.start()
  const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'confluent-group-producer', logLevel: logLevel.NOTHING })
  producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
})

after(async () => {
  for (const m of members) m.kill9()
  await producer?.disconnect().catch(() => {})
  await broker.kill9()
  dir.remove()
})

function startMember(name: string, topic: string, groupId: string, strategy: string, sessionTimeoutMs: number, instanceId?: string): MemberProcess {
  const member = new MemberProcess(name, PYTHON, [
    MEMBER_SCRIPT, broker.bootstrap, topic, groupId,
    '--strategy', strategy,
    '--session-timeout-ms', String(sessionTimeoutMs),
    '--sleep-every', '4',
    ...(instanceId ? ['--instance-id', instanceId] : []),
  ])
  members.push(member)
  return member
}

/** True once the live members' current assignments cover every partition exactly once. */
function settled(live: readonly MemberProcess[]): boolean {
  const owned = live.flatMap((m) => m.owns).sort((a, b) => a - b)
  return live.every((m) => m.owns.length > 0) && owned.length === PARTITIONS && owned.every((p, i) => p === i)
}

async function produce(topic: string, values: string[]): Promise<void> {
  for (let start = 0; start < values.length; start += 1000) {
    const messages = values.slice(start, start + 1000).map((value, i) => ({ value, partition: (start + i) % PARTITIONS }))
    await producer.send({ topic, acks: -1, messages })
  }
}

/** A fresh 6-partition topic and a group of three members on it, settled before any record. */
async function startGroup(strategy: string, sessionTimeoutMs: number) {
  const topic = uniqueName(`confluent-${strategy}`)
  const groupId = uniqueName(`confluent-${strategy}`)
  await createTopic(broker.bootstrap, topic, PARTITIONS)
  const group = ['a', 'b', 'c'].map((name) => startMember(name, topic, groupId, strategy, sessionTimeoutMs)) as [MemberProcess, MemberProcess, MemberProcess]
  await waitFor(() => settled(group), { timeoutMs: 30_000, what: 'three members to settle' }).catch((err: Error) => {
    throw new Error(`${err.message}\n${failureContext()}`)
  })
  return { topic, group }
}

function failureContext(): string {
  return members.map((m) => `${m.name}: ${JSON.stringify(m.other.slice(-5))} ${m.stderr.slice(-1500)}`).join('\n')
}

test('confluent-kafka eager group of 3 processes: kill -9 of a member loses nothing', { timeout: 120_000 }, async (t) => {
  const SESSION_MS = 6_000
  const { topic, group } = await startGroup('range', SESSION_MS)
  const [a, b, c] = group

  const produced = Array.from({ length: 30_000 }, (_, i) => `r-${i}`)
  await produce(topic, produced)
  await waitFor(() => c.records.length >= 1000, { timeoutMs: 60_000, what: 'member c to process 1000 records' })
  c.kill9()
  const killedAt = Date.now()
  t.diagnostic(`killed member c after it processed ${c.records.length} records (partitions ${c.owns.join(',')})`)

  await waitFor(() => settled([a, b]), { timeoutMs: SESSION_MS + 20_000, intervalMs: 50, what: 'survivors to take over every partition' })
  const takeoverMs = Math.max(a.owned.at(-1)!.t, b.owned.at(-1)!.t) - killedAt
  t.diagnostic(`survivors own all ${PARTITIONS} partitions ${takeoverMs} ms after the kill (session timeout ${SESSION_MS} ms)`)
  assert.ok(takeoverMs <= SESSION_MS + 3_000, `takeover took ${takeoverMs} ms`)

  await waitFor(() => allProcessed(group, produced), { timeoutMs: 90_000, intervalMs: 200, what: 'every record processed' })
  const report = checkGroupHistory(historyOf(group), produced)
  t.diagnostic(`${produced.length} produced, ${report.lost.length} lost, ${report.duplicates} processed twice, ${report.uncommittedAtHandovers} uncommitted at ${report.handovers} handovers`)
  assert.deepEqual(report.violations, [])
  assert.deepEqual(checkExclusiveOwnership(group.flatMap((m) => m.owned), (m) => (m === 'c' ? killedAt : undefined)), [])
  assert.deepEqual(report.lost, [])
  assert.ok(report.duplicates <= report.uncommittedAtHandovers, 'only uncommitted work is read twice')
})

test('confluent-kafka cooperative-sticky group: a clean close hands partitions over at once, incrementally', { timeout: 120_000 }, async (t) => {
  const SESSION_MS = 30_000
  const { topic, group } = await startGroup('cooperative-sticky', SESSION_MS)
  const [a, b, c] = group
  const first = Array.from({ length: 6_000 }, (_, i) => `f-${i}`)
  await produce(topic, first)
  await waitFor(() => allProcessed(group, first), { timeoutMs: 60_000, intervalMs: 200, what: 'the first records processed' })

  const keptByA = new Set(a.owns)
  const keptByB = new Set(b.owns)
  const ownedEventsBefore = [a.owned.length, b.owned.length]
  c.stop()
  const leftAt = Date.now()
  await waitFor(() => settled([a, b]), { timeoutMs: 20_000, intervalMs: 50, what: 'a and b to take over c\'s partitions' })
  const takeoverMs = Math.max(a.owned.at(-1)!.t, b.owned.at(-1)!.t) - leftAt
  t.diagnostic(`after c closed, a and b own all ${PARTITIONS} partitions in ${takeoverMs} ms (session timeout ${SESSION_MS} ms)`)
  assert.ok(takeoverMs < 10_000, 'the leave was acted on at once, not after the session timeout')
  await waitFor(() => !c.alive, { timeoutMs: 10_000, what: 'c to exit' })
  assert.ok(c.closedAt !== undefined, 'c closed its consumer')

  // Incremental: a and b only gained partitions; what each had, it kept throughout.
  for (const [member, kept, from] of [[a, keptByA, ownedEventsBefore[0]!], [b, keptByB, ownedEventsBefore[1]!]] as const) {
    const revoked = member.owned.slice(from).flatMap((e) => e.removed)
    assert.deepEqual(revoked, [], `${member.name} gave up nothing`)
    for (const p of kept) assert.ok(member.owns.includes(p), `${member.name} kept partition ${p}`)
  }

  const second = Array.from({ length: 3_000 }, (_, i) => `s-${i}`)
  await produce(topic, second)
  await waitFor(() => allProcessed(group, second), { timeoutMs: 60_000, intervalMs: 200, what: 'records produced after the leave' })
  const report = checkGroupHistory(historyOf(group), [...first, ...second])
  t.diagnostic(`${first.length + second.length} produced, ${report.lost.length} lost, ${report.duplicates} processed twice`)
  assert.deepEqual(report.violations, [])
  assert.deepEqual(checkExclusiveOwnership(group.flatMap((m) => m.owned), (m) => (m === 'c' ? c.closedAt : undefined)), [])
  assert.deepEqual(report.lost, [])
  assert.equal(report.duplicates, 0, 'a clean close commits before it leaves: nothing is read twice')
})

test('confluent-kafka static members: a restarted instance takes its partitions back without a rebalance', { timeout: 120_000 }, async (t) => {
  const SESSION_MS = 30_000
  const topic = uniqueName('confluent-static')
  const groupId = uniqueName('confluent-static')
  await createTopic(broker.bootstrap, topic, PARTITIONS)
  const a = startMember('a', topic, groupId, 'range', SESSION_MS, 'instance-a')
  const b = startMember('b', topic, groupId, 'range', SESSION_MS, 'instance-b')
  await waitFor(() => settled([a, b]), { timeoutMs: 30_000, what: 'two static members to settle' })
  const first = Array.from({ length: 3_000 }, (_, i) => `f-${i}`)
  await produce(topic, first)
  await waitFor(() => allProcessed([a, b], first), { timeoutMs: 60_000, intervalMs: 200, what: 'the first records processed' })

  const bPartitions = [...b.owns]
  const aEvents = a.owned.length
  b.kill9()
  const killedAt = Date.now()
  const b2 = startMember('b2', topic, groupId, 'range', SESSION_MS, 'instance-b')
  await waitFor(() => b2.owns.length > 0, { timeoutMs: 20_000, what: 'the restarted instance to be assigned' })
  t.diagnostic(`the restarted instance owns ${b2.owns.join(',')} ${b2.owned[0]!.t - killedAt} ms after the kill (session timeout ${SESSION_MS} ms)`)
  assert.deepEqual(b2.owns, bPartitions, 'the same partitions as before')
  assert.equal(a.owned.length, aEvents, 'a was not rebalanced')

  const second = Array.from({ length: 3_000 }, (_, i) => `s-${i}`)
  await produce(topic, second)
  const group = [a, b, b2]
  await waitFor(() => allProcessed(group, second), { timeoutMs: 60_000, intervalMs: 200, what: 'records produced after the restart' })
  const report = checkGroupHistory(historyOf(group), [...first, ...second])
  t.diagnostic(`${first.length + second.length} produced, ${report.lost.length} lost, ${report.duplicates} processed twice`)
  assert.deepEqual(report.violations, [])
  assert.deepEqual(report.lost, [])
  assert.ok(report.duplicates <= report.uncommittedAtHandovers, 'only uncommitted work is read twice')
})
