// kill -9 of the broker process under mixed load, in a loop. Each cycle: a plain producer that
// never retries (4 concurrent senders, one record per send) and an idempotent producer that
// retries through the crash (batches of 10) write to 3 partitions, while a consumer group of two
// KafkaJS member processes reads and commits, all the time; at a random moment the broker is
// killed and restarted on the same data. After every restart the history checker
// (test/helpers/history.ts) compares what the producers were told and what the consumers read
// with what an independent client (kcat) reads back: nothing acknowledged lost, nothing stored
// twice, nothing out of real-time order, no offset skipped or reused, nothing a consumer read
// gone, and every commit the broker acknowledged before the kill still there. At the end the
// group must have consumed everything stored, with the group checks clean.
// While the broker restarts every few seconds the group may stall: when KafkaJS restarts a
// consumer under a new member id, the old id stays in the group until its session times out,
// and a restarted coordinator gives every member it knows a full session timeout again (as
// Kafka does when it loads a group), so a rebalance waits for a member that is gone until the
// kills stop. The members are not required to keep up during the kills, only to catch up after.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { historyOf, MemberProcess } from '../helpers/group-member-process.ts'
import { assertClean, checkHistory, describeReport, History, totalsLine, type StoredRecord } from '../helpers/history.ts'
import { kcatReadPartition } from '../helpers/kcat.ts'
import { requireKcat } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs
const CYCLES = Number(process.env.CRASH_CYCLES ?? 6)
const PARTITIONS = 3
const PLAIN_SENDERS = 4
const IDEMPOTENT_BATCH = 10
const MEMBER_SCRIPT = fileURLToPath(new URL('../integration/clients/kafkajs_group_member.ts', import.meta.url))
const topic = uniqueName('crash')
const groupId = uniqueName('crash-group')
const dir = tempDir('tideway-crash-')
const broker = new BrokerProcess(dir.path)
const members: MemberProcess[] = []
const lifetimeMs = 120_000 + CYCLES * 8_000

before(async () => {
  requireKcat()
  await broker.start()
  await createTopic(broker.bootstrap, topic, PARTITIONS)
})
after(async () => {
  for (const m of members) m.kill9()
  await broker.kill9()
  dir.remove()
})

async function readStored(): Promise<Map<number, StoredRecord[]>> {
  const stored = new Map<number, StoredRecord[]>()
  for (let p = 0; p < PARTITIONS; p++) stored.set(p, await kcatReadPartition(broker.bootstrap, topic, p))
  return stored
}

/** The group's committed offsets as the broker holds them now. */
async function committedOffsets(): Promise<Map<number, number>> {
  const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 20, initialRetryTime: 100 } }).admin()
  await admin.connect()
  try {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] })
    return new Map(offsets!.partitions.map((p) => [p.partition, Number(p.offset)]))
  } finally {
    await admin.disconnect()
  }
}

/** The highest commit each partition had acknowledged by time `t`. */
function acknowledgedCommits(t: number): Map<number, number> {
  const best = new Map<number, number>()
  for (const c of members.flatMap((m) => m.commits)) {
    if (c.t < t && c.offset > (best.get(c.partition) ?? -1)) best.set(c.partition, c.offset)
  }
  return best
}

test(`kill -9 under produce, consume and commit load, ${CYCLES} cycles: the history checker finds nothing lost, duplicated or reordered`, { timeout: 120_000 + CYCLES * 20_000 }, async (t) => {
  const history = new History()
  let seed = Number(process.env.SEED ?? 7)
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const startMember = () => {
    const name = `m${members.length + 1}`
    const member = new MemberProcess(name, process.execPath, [MEMBER_SCRIPT, broker.bootstrap, topic, groupId, '--session-timeout-ms', '10000', '--lifetime-ms', String(lifetimeMs)], lifetimeMs)
    members.push(member)
    return member
  }
  let live = [startMember(), startMember()]
  let replaced = 0
  /** A member whose KafkaJS consumer gave up for good has exited: start another, as a supervisor would. */
  const replaceDeadMembers = () => {
    for (const dead of live.filter((m) => !m.alive)) {
      const crash = dead.other.filter((e) => e.event === 'crashed').at(-1)
      t.diagnostic(`member ${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode}${crash ? `: ${String(crash.error)}` : ''}); starting another`)
      replaced++
    }
    live = [...live.filter((m) => m.alive), ...live.filter((m) => !m.alive).map(() => startMember())]
  }

  let recordsChecked = 0
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const kafka = (clientId: string, retries: number) =>
      new Kafka({ brokers: [broker.bootstrap], clientId, logLevel: logLevel.NOTHING, retry: { retries, initialRetryTime: 50, maxRetryTime: 500 }, connectionTimeout: 3000, requestTimeout: 10000 })
    const plain = kafka(`plain-${cycle}`, 0).producer({ retry: { retries: 0 }, allowAutoTopicCreation: false })
    const idempotent = kafka(`idempotent-${cycle}`, 40).producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
    await Promise.all([plain.connect(), idempotent.connect()])
    let running = true
    const plainSenders = Array.from({ length: PLAIN_SENDERS }, async (_, s) => {
      for (let n = 0; running; n++) {
        const value = `c${cycle}-plain${s}-${n}`
        const partition = (s + n) % PARTITIONS
        const ok = await history.produce(`plain-${cycle}`, value, partition, async () => {
          const [meta] = await plain.send({ topic, acks: -1, timeout: 5000, messages: [{ value, partition }] })
          return Number(meta!.baseOffset)
        })
        if (!ok && running) await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })
    const idempotentSender = (async () => {
      for (let n = 0; running; n++) {
        const partition = n % PARTITIONS
        const values = Array.from({ length: IDEMPOTENT_BATCH }, (_, i) => `c${cycle}-idem-${n}-${i}`)
        for (const value of values) history.sent(`idempotent-${cycle}`, value, partition)
        try {
          const [meta] = await idempotent.send({ topic, acks: -1, messages: values.map((value) => ({ value, partition })) })
          values.forEach((value, i) => history.acked(value, partition, Number(meta!.baseOffset) + i))
        } catch (err) {
          for (const value of values) history.failed(value, err)
          return // an idempotent producer that gave up may not be reused for later sequences
        }
      }
    })()

    await new Promise((resolve) => setTimeout(resolve, 400 + Math.floor(random() * 1200)))
    const killedAt = Date.now()
    await broker.kill9()
    running = false
    await broker.start()
    await Promise.all([...plainSenders, idempotentSender])
    await Promise.all([plain.disconnect().catch(() => {}), idempotent.disconnect().catch(() => {})])

    // Check after every restart.
    replaceDeadMembers()
    const stored = await readStored()
    history.observed(members.flatMap((m) => m.records), members.flatMap((m) => m.commits))
    const report = checkHistory(history, stored)
    t.diagnostic(`cycle ${cycle + 1}/${CYCLES}: ${describeReport(report)}; members ${live.map((m) => `${m.name} read ${m.records.length} in ${m.assigned.length} assignments`).join(', ')}`)
    assertClean(report, `cycle ${cycle + 1}`)
    recordsChecked += report.recordsChecked
    const committed = await committedOffsets()
    for (const [partition, offset] of acknowledgedCommits(killedAt)) {
      assert.ok((committed.get(partition) ?? -1) >= offset, `cycle ${cycle + 1}: partition ${partition} commit ${offset} acknowledged before the kill, broker holds ${committed.get(partition)}`)
    }
  }

  // The group reads everything that is stored, and its own history is clean.
  const stored = await readStored()
  const storedValues = [...stored.values()].flatMap((records) => records.map((r) => r.value))
  await waitFor(() => {
    replaceDeadMembers()
    const seen = new Set(members.flatMap((m) => m.records.map((r) => r.value)))
    return storedValues.every((v) => seen.has(v))
  }, { timeoutMs: 60_000 + storedValues.length / 5, intervalMs: 500, what: `the group to consume all ${storedValues.length} stored records` })
  const group = historyOf(members)
  history.observed(group.records, group.commits)
  const report = checkHistory(history, stored, { group })
  const restarts = members.reduce((n, m) => n + m.other.filter((e) => e.event === 'crashed').length, 0)
  t.diagnostic(`final: ${describeReport(report)}; KafkaJS restarted a consumer ${restarts} time(s), ${replaced} member(s) replaced after it gave up on them`)
  assertClean(report, 'final')
  assert.ok(report.acknowledged > CYCLES * 50, `enough acknowledged records to mean something (${report.acknowledged})`)
  assert.ok(report.failed > 0, 'some sends were cut off by a kill')
  t.diagnostic(totalsLine({ cycles: CYCLES, recordsChecked: recordsChecked + report.recordsChecked, lost: report.lost.length, duplicates: report.duplicates, reorders: report.reorders.length }))
})
