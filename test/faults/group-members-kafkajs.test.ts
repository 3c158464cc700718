// A KafkaJS consumer group of three real processes against a real broker process:
// 1. 30,000 records over 6 partitions; one member is kill -9ed while it still has work. The two
//    survivors take its partitions within the session timeout; every record is processed, one
//    owner per partition at a time, and records are read twice only where the killed member had
//    processed them without an acknowledged commit.
// 2. Then the broker is kill -9ed and restarted on the same data: the group comes back with its
//    members and generation (the membership is stored with the offsets), so the members carry
//    on with their assignments, without a rebalance and without reading anything twice, and
//    read everything produced afterwards.
// 3. Finally a member leaves cleanly, and the last one takes every partition at once rather
//    than after the session timeout.
// The checks are in test/helpers/group-history.ts.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { checkGroupHistory } from '../helpers/group-history.ts'
import { allProcessed, historyOf, MemberProcess } from '../helpers/group-member-process.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs

const MEMBER_SCRIPT = fileURLToPath(new URL('../integration/clients/kafkajs_group_member.ts', import.meta.url))
const PARTITIONS = 6
const RECORDS = 30_000
const AFTER_CRASH = 6_000
const SESSION_TIMEOUT_MS = 8_000
/** Waiting longer than the session timeout would hide a leave that was not acted on. */
const SESSION_MS_FOR_LEAVE = SESSION_TIMEOUT_MS - 1000

const dir = tempDir()
const broker = new BrokerProcess(dir.path)
const members: MemberProcess[] = []
const closers: (() => Promise<unknown>)[] = []

after(async () => {
  for (const m of members) m.kill9()
  for (const close of closers.splice(0).reverse()) await close().catch(() => {})
  await broker.kill9()
  dir.remove()
})

function startMember(name: string, topic: string, groupId: string): MemberProcess {
  const member = new MemberProcess(name, process.execPath, [
    MEMBER_SCRIPT, broker.bootstrap, topic, groupId,
    '--session-timeout-ms', String(SESSION_TIMEOUT_MS),
    '--sleep-every', '4',
    '--lifetime-ms', '240000',
  ])
  members.push(member)
  return member
}

/** True once the live members' latest assignments cover every partition exactly once. */
function settled(live: readonly MemberProcess[], generationAbove = 0): boolean {
  const latest = live.map((m) => m.assigned.at(-1))
  if (latest.some((a) => a?.generation === undefined || a.generation <= generationAbove)) return false
  if (new Set(latest.map((a) => a!.generation)).size !== 1) return false
  const owned = latest.flatMap((a) => a!.partitions).sort((a, b) => a - b)
  return owned.length === PARTITIONS && owned.every((p, i) => p === i)
}

async function produce(producer: kafkajs.Producer, topic: string, values: string[]): Promise<void> {
  for (let start = 0; start < values.length; start += 1000) {
    const chunk = values.slice(start, start + 1000)
    const byPartition = new Map<number, { value: string }[]>()
    chunk.forEach((value, i) => {
      const p = (start + i) % PARTITIONS
      if (!byPartition.has(p)) byPartition.set(p, [])
      byPartition.get(p)!.push({ value })
    })
    await producer.sendBatch({
      acks: -1,
      topicMessages: [...byPartition].map(([partition, messages]) => ({ topic, messages: messages.map((m) => ({ ...m, partition })) })),
    })
  }
}

test('KafkaJS group of 3 processes: kill -9 of a member, then of the broker, loses nothing', { timeout: 240_000 }, async (t) => {
  await broker.start()
  const topic = uniqueName('group-kill')
  const groupId = uniqueName('group-kill')
  await createTopic(broker.bootstrap, topic, PARTITIONS)

  const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'group-kill-producer', logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } })
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  closers.push(() => producer.disconnect())

  const [a, b, c] = ['a', 'b', 'c'].map((name) => startMember(name, topic, groupId)) as [MemberProcess, MemberProcess, MemberProcess]
  await waitFor(() => settled([a, b, c]), { timeoutMs: 30_000, what: 'three members to settle on six partitions' })

  // Phase 1: kill member c while it has processed part of its share.
  const produced = Array.from({ length: RECORDS }, (_, i) => `r-${i}`)
  await produce(producer, topic, produced)
  await waitFor(() => c.records.length >= 1000, { timeoutMs: 60_000, what: 'member c to process 1000 records' })
  const cGeneration = c.assigned.at(-1)!.generation
  c.kill9()
  const killedAt = Date.now()
  t.diagnostic(`killed member c after it processed ${c.records.length} records (partitions ${c.owns.join(',')})`)

  await waitFor(() => settled([a, b], cGeneration), { timeoutMs: SESSION_TIMEOUT_MS + 20_000, what: 'survivors to take over all partitions' })
  const takeoverMs = Math.max(a.assigned.at(-1)!.t, b.assigned.at(-1)!.t) - killedAt
  t.diagnostic(`survivors own all ${PARTITIONS} partitions ${takeoverMs} ms after the kill (session timeout ${SESSION_TIMEOUT_MS} ms)`)
  // The coordinator expires c one session timeout after its last heartbeat; the survivors' next
  // heartbeat (500 ms) starts their rejoin. Bounded by the session timeout plus that slack.
  assert.ok(takeoverMs <= SESSION_TIMEOUT_MS + 3_000, `takeover took ${takeoverMs} ms`)

  await waitFor(() => allProcessed(members, produced), { timeoutMs: 60_000, intervalMs: 200, what: `all ${RECORDS} records processed` })
  const phase1 = checkGroupHistory(historyOf(members), produced)
  t.diagnostic(`phase 1: ${RECORDS} produced, ${phase1.lost.length} lost, ${phase1.duplicates} processed twice, ${phase1.uncommittedAtHandovers} uncommitted at ${phase1.handovers} handovers`)
  assert.deepEqual(phase1.violations, [])
  assert.deepEqual(phase1.lost, [])
  assert.ok(phase1.duplicates <= phase1.uncommittedAtHandovers, 'only uncommitted work is read twice')

  // Phase 2: the broker crashes after commits were acknowledged; the members carry on after it
  // restarts (their member ids are unknown to it: they rejoin from scratch).
  await waitFor(() => allCommitted([a, b]), { timeoutMs: 30_000, intervalMs: 200, what: 'survivors to commit everything' })
  const assignmentsBefore = [a.assigned.length, b.assigned.length]
  const crashes = () => [a, b].reduce((n, m) => n + m.other.filter((e) => e.event === 'crashed').length, 0)
  const crashesBefore = crashes()
  await broker.kill9()
  const restartedAt = Date.now()
  await broker.start()
  const more = Array.from({ length: AFTER_CRASH }, (_, i) => `s-${i}`)
  await produce(producer, topic, more)
  await waitFor(() => allProcessed(members, more), { timeoutMs: 90_000, intervalMs: 200, what: `all ${AFTER_CRASH} records produced after the crash` })
  const all = checkGroupHistory(historyOf(members), [...produced, ...more], [restartedAt])
  t.diagnostic(`after the broker crash: ${AFTER_CRASH} more produced, ${all.lost.length} lost in total, ${all.duplicates} processed twice in total`)
  assert.deepEqual(all.violations, [])
  assert.deepEqual(all.lost, [])
  // KafkaJS itself may give up on a consumer while the broker is down (its fetch manager throws
  // KafkaJSNoBrokerAvailableError, which it does not retry, and restarts the consumer under a new
  // member id): then the rebalance is the client's. If no member restarted, none may happen.
  if (crashes() === crashesBefore) assert.deepEqual([a.assigned.length, b.assigned.length], assignmentsBefore, 'no rebalance after the broker restart')
  else t.diagnostic(`KafkaJS restarted ${crashes() - crashesBefore} consumer(s) while the broker was down, so the group rebalanced`)
  assert.equal(all.duplicates, phase1.duplicates, 'nothing is read twice because of the broker crash')
  assert.ok([a, b].every((m) => m.alive), 'the surviving members rode out the broker crash')

  // Phase 3: b leaves cleanly (KafkaJS disconnect sends LeaveGroup): a owns everything at once,
  // well before b's session could have expired.
  const bGeneration = b.assigned.at(-1)!.generation ?? 0
  const leftAt = Date.now()
  b.child.kill('SIGTERM')
  await waitFor(() => settled([a], bGeneration), { timeoutMs: SESSION_MS_FOR_LEAVE, what: 'a to own every partition after b left' })
  const leaveTakeoverMs = a.assigned.at(-1)!.t - leftAt
  t.diagnostic(`after a clean leave, the remaining member owns all ${PARTITIONS} partitions in ${leaveTakeoverMs} ms`)
  assert.ok(leaveTakeoverMs < SESSION_TIMEOUT_MS, 'a clean leave does not wait for the session timeout')
})

/** True once each member's last commit per owned partition is past its last processed record. */
function allCommitted(live: readonly MemberProcess[]): boolean {
  return live.every((m) =>
    m.owns.every((p) => {
      const processed = m.records.filter((r) => r.partition === p).at(-1)
      if (!processed) return true
      const committed = m.commits.filter((c) => c.partition === p).at(-1)
      return committed !== undefined && committed.offset > processed.offset
    }),
  )
}
