import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { configHelp, defaultConfig, envName, flagName, loadConfig, parseFlush } from '../../../src/broker/config.ts'
import { isTidewayError } from '../../../src/errors.ts'

test('defaults are 127.0.0.1:9092, ./data, fsync before ack, auto-create with one partition', () => {
  const config = loadConfig([], {})
  assert.equal(config.host, '127.0.0.1')
  assert.equal(config.port, 9092)
  assert.equal(config.dataDir, './data')
  assert.deepEqual(config.flush, { mode: 'always' })
  assert.equal(config.autoCreateTopics, true)
  assert.equal(config.defaultPartitions, 1)
  assert.deepEqual(config, defaultConfig())
})

test('flags override the environment, which overrides the config file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tideway-config-'))
  try {
    const file = join(dir, 'tideway.json')
    writeFileSync(file, JSON.stringify({ port: 1111, dataDir: '/from-file', defaultPartitions: 4 }))
    const config = loadConfig(['--config', file, '--port', '3333', '--flush=interval:10ms', '--auto-create-topics', 'false'], {
      TIDEWAY_PORT: '2222',
      TIDEWAY_DATA_DIR: '/from-env',
    })
    assert.equal(config.port, 3333)
    assert.equal(config.dataDir, '/from-env')
    assert.equal(config.defaultPartitions, 4)
    assert.deepEqual(config.flush, { mode: 'interval', intervalMs: 10 })
    assert.equal(config.autoCreateTopics, false)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('unknown flags, bad values and unknown config-file keys are errors, not ignored', () => {
  const isConfigError = (err: unknown) => isTidewayError(err, 'TIDEWAY_ERR_CONFIG')
  assert.throws(() => loadConfig(['--prot', '1'], {}), isConfigError)
  assert.throws(() => loadConfig(['--port', 'ninety'], {}), isConfigError)
  assert.throws(() => loadConfig([], { TIDEWAY_FLUSH: 'sometimes' }), isConfigError)
  assert.throws(() => parseFlush('interval:'), isConfigError)
})

test('every option is documented with its flag and environment variable', () => {
  const help = configHelp()
  for (const name of Object.keys(defaultConfig())) {
    assert.ok(help.includes(flagName(name)), `${name} flag missing from help`)
    assert.ok(help.includes(envName(name)), `${name} env var missing from help`)
  }
  assert.equal(flagName('maxFrameBytes'), '--max-frame-bytes')
  assert.equal(envName('maxFrameBytes'), 'TIDEWAY_MAX_FRAME_BYTES')
})
