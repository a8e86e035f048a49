import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { CheckRunner } from '../../src/health/runner';
import { Redactor } from '../../src/redact';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-services';
import { DATABASE_URL, hostPort, waitFor } from '../helpers/servers';
import { describeFaultBehaviour } from './faults';
import { checkFromYaml, runnerFor } from './support';

const PASSWORD = 'CANARY-PG-PW-4b1d';
const WRONG_PASSWORD = 'CANARY-PG-WRONG-9e07';
const shared = new URL(DATABASE_URL);
const database = shared.pathname; // e.g. /test

// The shared server trusts loopback, so a password in the URL is accepted and ignored;
// it is there so that every failure message is checked for it.
describeFaultBehaviour({
  kind: 'postgres',
  target: () => hostPort(DATABASE_URL),
  url: (proxy) => proxy.url('postgres', `${shared.username || 'postgres'}:${PASSWORD}@`, database),
  successMessage: () => 'SELECT 1: 1 row(s)',
  where: (proxy) => `postgres 127.0.0.1:${proxy.port}`,
  secrets: [PASSWORD],
});

const runners: CheckRunner[] = [];
function pgRunner(url: string, query?: string, timeout?: string) {
  const { check } = checkFromYaml(`kind: postgres\n    url: ${url}${query ? `\n    query: ${JSON.stringify(query)}` : ''}`, timeout ? { timeout } : {});
  // no secrets given to the redactor: the probe's own messages must not carry passwords
  const runner = runnerFor(check, new Redactor());
  runners.push(runner);
  return { check, runner };
}

describe('postgres probe: password authentication (private scram-sha-256 cluster)', () => {
  let server: PrivatePostgres;
  before(async () => {
    server = await startPrivatePostgres(PASSWORD);
  });
  after(async () => {
    for (const r of runners.splice(0)) await r.close();
    await server?.stop();
  });

  test('wrong password: failure says authentication failed, names no password', async () => {
    const { runner } = pgRunner(server.url('postgres', WRONG_PASSWORD));
    const result = await runner.run('manual');
    assert.deepEqual(
      { ok: result.ok, outcome: result.outcome, message: result.message },
      { ok: false, outcome: 'failure', message: `postgres 127.0.0.1:${server.port}: authentication failed (28P01: password authentication failed for user "postgres")` },
    );
    assert.ok(!result.message.includes(WRONG_PASSWORD) && !result.message.includes(PASSWORD));
  });

  test('unknown role: authentication failed as well', async () => {
    const { runner } = pgRunner(server.url('nobody_here', PASSWORD));
    const result = await runner.run('manual');
    assert.equal(result.outcome, 'failure');
    assert.ok(result.message.startsWith(`postgres 127.0.0.1:${server.port}: authentication failed (`), result.message);
    assert.ok(!result.message.includes(PASSWORD));
  });

  test('right password: the query runs, on one kept connection', async () => {
    const { runner } = pgRunner(server.url('postgres', PASSWORD), 'SELECT 1 UNION ALL SELECT 2');
    for (let i = 0; i < 3; i++) {
      const result = await runner.run('manual');
      assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message: 'SELECT 1 UNION ALL SELECT 2: 2 row(s)' });
    }
    const admin = new pg.Client({ connectionString: server.url('postgres', PASSWORD) });
    await admin.connect();
    try {
      const { rows } = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'otel-health-sidecar:%'");
      assert.equal(rows[0].n, 1);
    } finally {
      await admin.end();
    }
  });
});

describe('postgres probe: a slow query times out and leaves nothing running on the server', () => {
  const tag = `probe_sleep_${randomBytes(4).toString('hex')}`;
  /** how long the slow query would sleep: far beyond any timeout, so cancelled and not cancelled cannot look alike */
  const SLEEP_S = 60;
  let admin: pg.Client;
  before(async () => {
    admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    // how long the probe's query sleeps is data, so the same check can be slow, then fast
    await admin.query(`CREATE TABLE ${tag} (seconds float NOT NULL)`);
    await admin.query(`INSERT INTO ${tag} VALUES (${SLEEP_S})`);
  });
  after(async () => {
    for (const r of runners.splice(0)) await r.close();
    await admin.query(`DROP TABLE IF EXISTS ${tag}`).catch(() => undefined);
    await admin.end();
  });

  const lingering = async () => {
    const { rows } = await admin.query(
      "SELECT pid, state, query FROM pg_stat_activity WHERE application_name LIKE 'otel-health-sidecar:%' AND query LIKE '%pg_sleep%' AND query LIKE $1 AND pid <> pg_backend_pid()",
      [`%${tag}%`],
    );
    return rows as { pid: number; state: string; query: string }[];
  };

  test(`SELECT pg_sleep(${SLEEP_S}) with a 300ms timeout: timeout, no backend left sleeping, next run succeeds`, async () => {
    const { check, runner } = pgRunner(DATABASE_URL, `SELECT pg_sleep((SELECT seconds FROM ${tag}))`, '300ms');
    const started = performance.now();
    const result = await runner.run('manual');
    const elapsed = performance.now() - started;
    assert.deepEqual({ ok: result.ok, outcome: result.outcome, message: result.message }, { ok: false, outcome: 'timeout', message: `timed out after ${check.timeout}ms` });
    // compared with what the query itself would take, not with a figure for this machine
    assert.ok(elapsed < SLEEP_S * 1000, `run took ${elapsed}ms: it waited for the ${SLEEP_S} s query`);
    // the server must give up on the statement well before pg_sleep would have ended
    await waitFor(async () => (await lingering()).length === 0, { what: `no backend of ${tag} running pg_sleep`, timeoutMs: (SLEEP_S * 1000) / 2, intervalMs: 50 });
    await admin.query(`UPDATE ${tag} SET seconds = 0`);
    const next = await runner.run('manual');
    assert.deepEqual({ ok: next.ok, outcome: next.outcome }, { ok: true, outcome: 'success' }, next.message);
  });
});
