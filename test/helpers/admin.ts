// Topic administration for tests, through a real client (KafkaJS's admin), never broker internals.
import kafkajs from 'kafkajs'

const { Kafka, logLevel } = kafkajs

export async function createTopic(bootstrap: string, topic: string, numPartitions: number, configs: Record<string, string> = {}) {
  const admin = new Kafka({ brokers: [bootstrap], clientId: 'tideway-test-admin', logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions, configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }],
      waitForLeaders: true,
    })
    if (!created) throw new Error(`topic ${topic} already existed`)
  } finally {
    await admin.disconnect()
  }
}
