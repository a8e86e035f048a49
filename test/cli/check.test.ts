/**
 * `health-sidecar check` (compiled CLI): one run of each check through the same
 * policies, against a real HTTP server, real Redis and PostgreSQL and a refused
 * port behind the fault proxy. Table and JSON output asserted whole (latency
 * normalised), exit codes 0 (critical checks pass) / 1 (a critical check
 * failed) / 2 (unknown or skipped --check, invalid config), URL passwords
 * never printed.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { DATABASE_URL, hostPort, REDIS_URL, startHttpServer, type TestHttpServer } from '../helpers/servers';
import { run } from '../deploy/support';
import { CLI } from '../helpers/paths';

const PASSWORD = 'pg-CANARY-pass-81';

describe('health-sidecar check', () => {
  let dir: string;
  let web: TestHttpServer;
  let refused: FaultProxy;
  let file: string;
  let dbUrl: string;
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => run(process.execPath, [CLI, ...args], { env: { ...process.env, APP_URL: '', ...env } });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'check-cli-'));
    web = await startHttpServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? 200 : 500;
      res.end(req.url === '/healthz' ? 'ok' : 'broken');
    });
    refused = await startFaultProxy({ host: '127.0.0.1', port: web.port });
    refused.setMode('refuse');
    // PostgreSQL trusts loopback here, so a password in the URL is accepted and must still never be printed
    const pg = new URL(DATABASE_URL);
    pg.password = PASSWORD;
    dbUrl = pg.toString();
    file = join(dir, 'sidecar.yaml');
    writeFileSync(
      file,
      // a timeout no busy machine reaches: one attempt is what the table says (attempts 1), so a slow first connect must not time out
      `defaults: { timeout: 10s, interval: 10s, retry: { attempts: 2, backoff: { initial: 10ms, max: 20ms } } }
checks:
  - { name: web, kind: http, url: '${web.url}/healthz', expect: { bodyContains: ok } }
  - { name: cache, kind: redis, url: '${REDIS_URL}' }
  - { name: db, kind: postgres, url: '${dbUrl}' }
  - { name: legacy, kind: tcp, url: 'tcp://127.0.0.1:${refused.port}', critical: false }
  - { name: app, kind: http, url: '\${APP_URL}' }
`,
    );
  });
  after(async () => {
    await refused.close();
    await web.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('table: every check once, a non-critical failure does not fail the run (exit 0), skipped checks are named', async () => {
    const result = await cli(['check', '--config', file]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, 'check app skipped: environment variable APP_URL is not set (url)\n');
    const lines = result.stdout.trimEnd().split('\n');
    const normalised = lines.map((l) => l.replace(/\d+(\.\d+)?ms/, 'Nms').replace(/\s+/g, ' '));
    const { port } = hostPort(REDIS_URL);
    assert.deepEqual(normalised, [
      'CHECK KIND RESULT LATENCY ATTEMPTS MESSAGE',
      `web http ok Nms 1 GET ${web.url}/healthz: status 200`,
      'cache redis ok Nms 1 PONG',
      'db postgres ok Nms 1 SELECT 1: 1 row(s)',
      `legacy tcp failure (non-critical) Nms 2 tcp 127.0.0.1:${refused.port}: connection refused (connect ECONNREFUSED 127.0.0.1:${refused.port})`,
    ].map((l) => l.replace(/\s+/g, ' ')), `redis on ${port}`);
    // columns line up: every row's RESULT starts where the header's does
    const col = lines[0]!.indexOf('RESULT');
    for (const line of lines.slice(1)) assert.match(line.slice(col), /^(ok|failure)/);
    assert.ok(!result.stdout.includes(PASSWORD) && !result.stderr.includes(PASSWORD), 'no URL password in the output');
  });

  test('--json --check: only the named checks, as JSON', async () => {
    const result = await cli(['check', '--config', file, '--json', '--check', 'db', '--check', 'legacy']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const parsed = JSON.parse(result.stdout) as { latencyMs: number }[];
    for (const r of parsed) assert.ok(typeof r.latencyMs === 'number' && r.latencyMs >= 0);
    assert.deepEqual(parsed.map((r) => ({ ...r, latencyMs: 0 })), [
      { name: 'db', kind: 'postgres', critical: true, ok: true, outcome: 'success', latencyMs: 0, attempts: 1, message: 'SELECT 1: 1 row(s)' },
      { name: 'legacy', kind: 'tcp', critical: false, ok: false, outcome: 'failure', latencyMs: 0, attempts: 2, message: `tcp 127.0.0.1:${refused.port}: connection refused (connect ECONNREFUSED 127.0.0.1:${refused.port})` },
    ]);
    assert.ok(!result.stdout.includes(PASSWORD));
  });

  test('a failing critical check exits 1', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, `defaults: { timeout: 10s, interval: 10s, retry: { attempts: 1 } }\nchecks:\n  - { name: web, kind: http, url: '${web.url}/broken' }\n  - { name: cache, kind: redis, url: '${REDIS_URL}' }\n`);
    const result = await cli(['check', '--config', bad, '--json']);
    assert.equal(result.code, 1, result.stderr);
    const parsed = JSON.parse(result.stdout) as { name: string; ok: boolean; outcome: string; message: string }[];
    assert.deepEqual(parsed.map((r) => [r.name, r.ok, r.outcome]), [['web', false, 'failure'], ['cache', true, 'success']]);
    assert.match(parsed[0]!.message, /500/);
  });

  test('unknown or skipped --check, and an invalid config, exit 2 with a clear message and no output', async () => {
    const unknown = await cli(['check', '--config', file, '--check', 'nope']);
    assert.deepEqual(unknown, { code: 2, stdout: '', stderr: 'no check named nope (checks: web, cache, db, legacy)\n' });
    const skipped = await cli(['check', '--config', file, '--check', 'app']);
    assert.deepEqual(skipped, { code: 2, stdout: '', stderr: 'check app is skipped: environment variable APP_URL is not set (url)\n' });
    const invalid = join(dir, 'invalid.yaml');
    writeFileSync(invalid, 'checks:\n  - { name: web, kind: http, url: ftp://x }\n');
    const result = await cli(['check', '--config', invalid]);
    assert.deepEqual(result, { code: 2, stdout: '', stderr: `${invalid}:2:35 checks[0].url: scheme must be http or https, not ftp\n${invalid}: 1 problem(s); config not loaded\n` });
  });
});
