// The location service: the latest position of each courier's device, at-most-once.
//
// Pings arrive every few seconds per device and only the newest matters, so a lost ping costs
// nothing and a repeated or late one would be worse than none. The producer sends each ping
// once; the consumer commits before it handles, so a crash skips pings rather than replaying
// them. Every ping handled is logged in `pings` (no unique key), so the report can count both.
import { createConsumer, sqliteStore } from '../../../src/index.ts'
import { dbPath, emit, onShutdown, serviceLogger, shopConfig, Topic } from '../common.ts'

interface Ping {
  id: string
  device: string
  lat: number
  lon: number
}

const config = shopConfig()
const logger = serviceLogger('location')
const store = sqliteStore(dbPath(config.dataDir, 'location'), { synchronous: 'normal' })
await store.migrate()
await store.transaction(async (tx) => {
  await tx.query('CREATE TABLE IF NOT EXISTS pings (id TEXT NOT NULL, device TEXT NOT NULL)')
  await tx.query('CREATE TABLE IF NOT EXISTS positions (device TEXT PRIMARY KEY, lat REAL NOT NULL, lon REAL NOT NULL, ping TEXT NOT NULL)')
})

const pings = createConsumer<Ping>({
  bootstrap: config.bootstrap,
  groupId: 'shop-location',
  groupInstanceId: 'location-1',
  sessionTimeoutMs: 6_000,
  topics: [Topic.pings],
  delivery: 'at-most-once',
  logger,
  decode: (value) => JSON.parse(value!.toString()),
  handler: async (message) => {
    const ping = message.body
    await store.transaction(async (tx) => {
      await tx.query('INSERT INTO pings VALUES (?, ?)', [ping.id, ping.device])
      await tx.query('INSERT INTO positions VALUES (?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, ping = excluded.ping', [
        ping.device,
        ping.lat,
        ping.lon,
        ping.id,
      ])
    })
  },
})
await pings.start()
emit({ event: 'ready' })

onShutdown(async () => {
  await pings.stop()
  await store.close()
})
