/**
 * The connections each check holds (issue 21.7), recorded through the
 * ProbeMetrics of telemetry/instruments.ts on a real (private) MeterProvider
 * and compared with what the real servers see:
 * `db.client.connection.count` (pool name = check name, state idle/used) for
 * PostgreSQL against pg_stat_activity, `healthcheck.connections` for Redis
 * against CLIENT LIST. Check names are unique per run (other test files probe
 * the same servers at the same time).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DataPointType, MeterProvider, MetricReader, type SumMetricData } from '@opentelemetry/sdk-metrics';
import Redis from 'ioredis';
import pg from 'pg';
import type { CheckRunner } from '../../src/health/runner';
import { parseConfig } from '../../src/probes/registry';
import { probeMetrics } from '../../src/telemetry/instruments';
import { SCOPE } from '../../src/telemetry/semconv';
import { Redactor } from '../../src/redact';
import { DATABASE_URL, REDIS_URL, waitFor } from '../helpers/servers';
import { runnerFor } from './support';

class TestReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

const reader = new TestReader();
const probes = probeMetrics(new MeterProvider({ readers: [reader] }).getMeter(SCOPE));
const suffix = randomBytes(4).toString('hex');
const runners: CheckRunner[] = [];

function runner(name: string, body: string): CheckRunner {
  const text = ['defaults:', '  interval: 10m', '  timeout: 10s', '  retry: { attempts: 1 }', 'checks:', `  - name: ${name}`, `    ${body.trim()}`, ''].join('\n');
  const config = parseConfig(text, 'gauges-test.yaml', { env: {} });
  const made = runnerFor(config.checks[0]!, new Redactor(config.secrets), undefined, undefined, probes);
  runners.push(made);
  return made;
}

/** the gauge's values for one series key, by db.client.connection.state */
async function gauge(metric: string, key: string, value: string): Promise<Record<string, number>> {
  const { resourceMetrics } = await reader.collect();
  const data = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === metric) as SumMetricData | undefined;
  if (data) {
    assert.equal(data.descriptor.unit, '{connection}');
    // the semantic conventions' instrument for db.client.connection.count: an UpDownCounter (a Prometheus gauge)
    assert.equal(data.dataPointType, DataPointType.SUM);
    assert.equal(data.isMonotonic, false);
  }
  return Object.fromEntries((data?.dataPoints ?? []).filter((p) => p.attributes[key] === value).map((p) => [p.attributes['db.client.connection.state'] as string, p.value]));
}

after(async () => {
  await Promise.all(runners.map((r) => r.close()));
});

describe('db.client.connection.count: a postgres check', () => {
  const name = `pg-gauge-${suffix}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  const backends = async () =>
    Number((await admin.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [`otel-health-sidecar:${name}`])).rows[0]!.n);
  before(() => admin.connect());
  after(() => admin.end());

  test('idle 1 between runs, used 1 during one (as pg_stat_activity sees one backend); 0 after close', async () => {
    const check = runner(name, `kind: postgres\n    url: ${JSON.stringify(DATABASE_URL)}\n    query: "SELECT pg_sleep(0.3)"`);
    assert.equal((await check.run('manual')).ok, true);
    assert.deepEqual(await gauge('db.client.connection.count', 'db.client.connection.pool.name', name), { idle: 1, used: 0 });
    assert.equal(await backends(), 1, 'the server sees the one connection the gauge reports');

    // during a run: wait for the server to be running the probe's query, then read the gauge
    const running = check.run('manual');
    await waitFor(
      async () => (await admin.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = $2', [`otel-health-sidecar:${name}`, 'active'])).rowCount === 1,
      { what: 'the probe query running' },
    );
    assert.deepEqual(await gauge('db.client.connection.count', 'db.client.connection.pool.name', name), { idle: 0, used: 1 });
    assert.equal((await running).ok, true);
    assert.deepEqual(await gauge('db.client.connection.count', 'db.client.connection.pool.name', name), { idle: 1, used: 0 });

    await check.close();
    assert.deepEqual(await gauge('db.client.connection.count', 'db.client.connection.pool.name', name), { idle: 0, used: 0 });
    await waitFor(async () => (await backends()) === 0, { what: 'the backend gone' });
  });

  test('a check that cannot connect holds nothing', async () => {
    const down = `pg-gauge-down-${suffix}`;
    const check = runner(down, 'kind: postgres\n    url: postgres://postgres@127.0.0.1:1/test');
    assert.equal((await check.run('manual')).ok, false);
    assert.deepEqual(await gauge('db.client.connection.count', 'db.client.connection.pool.name', down), { idle: 0, used: 0 });
  });
});

describe('healthcheck.connections: a redis check', () => {
  const name = `redis-gauge-${suffix}`;
  const admin = new Redis(REDIS_URL, { lazyConnect: true });
  const clients = async () => String(await admin.call('CLIENT', 'LIST')).split('\n').filter((line) => line.includes(` name=otel-health-sidecar:${name} `)).length;
  before(() => admin.connect());
  after(() => admin.quit());

  test('idle 1 between runs (as CLIENT LIST shows one client); 0 after close', async () => {
    const check = runner(name, `kind: redis\n    url: ${JSON.stringify(REDIS_URL)}`);
    assert.equal((await check.run('manual')).ok, true);
    assert.deepEqual(await gauge('healthcheck.connections', 'healthcheck.name', name), { idle: 1, used: 0 });
    assert.equal(await clients(), 1, 'the server sees the one connection the gauge reports');
    assert.equal((await check.run('manual')).ok, true);
    assert.deepEqual(await gauge('healthcheck.connections', 'healthcheck.name', name), { idle: 1, used: 0 }, 'the connection is kept, not added to');

    await check.close();
    assert.deepEqual(await gauge('healthcheck.connections', 'healthcheck.name', name), { idle: 0, used: 0 });
    await waitFor(async () => (await clients()) === 0, { what: 'the client gone' });
  });
});
