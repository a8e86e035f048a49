/**
 * docs/api.md works as written: its first config block runs as a monitor
 * (compiled CLI, a private database as DATABASE_URL), and its curl block runs
 * against it with bash and the real curl — every call answers 2xx — and the
 * audit log then shows each change made.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { ensureBuilt, ROOT } from '../helpers/paths';
import { privateDatabase, startMonitor, type MonitorProcess, type PrivateDatabase } from '../helpers/monitor-store';

const run = promisify(execFile);
const KEY = 'doc-admin-key-0123456789';
const doc = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
/** the fenced blocks of a language, in order */
const blocks = (lang: string) => [...doc.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);

let db: PrivateDatabase;
let monitor: MonitorProcess;

before(async () => {
  ensureBuilt();
  db = await privateDatabase();
  const config = blocks('yaml')[0]!;
  assert.match(config, /store:\n  postgres: \$\{DATABASE_URL\}/);
  monitor = await startMonitor((port) => config.replace('${PORT:-9464}', String(port)), { DATABASE_URL: db.url, HEALTH_ADMIN_KEY: KEY });
});

after(async () => {
  await monitor?.stop();
  await db?.drop();
});

test('the curl examples of docs/api.md run against a monitor with a store: every call 2xx, each change audited', async () => {
  const script = blocks('sh')[0]!;
  assert.match(script, /curl/);
  const commands = script.replaceAll('localhost:9464', `127.0.0.1:${monitor.port}`).replaceAll('curl -sS', 'curl -sS --fail-with-body');
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', commands], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HEALTH_ADMIN_KEY: KEY }, timeout: 60_000 });
  assert.match(stdout, /"name":"shop"/);
  const audit = await db.query<{ action: string; actor: string }>("SELECT action, actor FROM ohs_audit WHERE monitor = 'shop' ORDER BY id");
  assert.deepEqual(audit.map((a) => [a.action, a.actor]), [['create', 'key:platform'], ['update', 'key:platform'], ['delete', 'key:platform']]);
  assert.equal((await db.query("SELECT 1 FROM ohs_monitors WHERE name = 'shop'")).length, 0);
});
