/**
 * Sharding end to end, through the real startup path: two compiled CLIs
 * (`node dist/cli.js run`) with the same config file, `shard: { index: auto,
 * count: 2 }`, told apart only by HOSTNAME as a StatefulSet would (mon-0,
 * mon-1). Together they own every check and no check twice — in /health, in
 * /metrics, in /admin/diagnostics, and in the requests the target really
 * received (each probe says who sent it in a header).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { shardOf } from '../../src/config/shard';
import { freePort, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { CLI, ensureBuilt, ROOT } from '../helpers/paths';
import { get } from '../helpers/http';

const KEY = 'shard-test-key-0123456789';
const NAMES = Array.from({ length: 16 }, (_, i) => `svc-${i}`);

let dir: string;
let target: TestHttpServer;
/** path → the HOSTNAMEs of the sidecars that probed it */
const probedBy = new Map<string, Set<string>>();
const children: ChildProcess[] = [];

before(async () => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'shard-run-'));
  target = await startHttpServer((req, res) => {
    const who = String(req.headers['x-probe-by'] ?? '?');
    const path = req.url ?? '';
    if (!probedBy.has(path)) probedBy.set(path, new Set());
    probedBy.get(path)!.add(who);
    res.end('ok');
  });
});

after(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
  }
  await target?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('two replicas with shard { index: auto, count: 2 } together own every check, none twice', async () => {
  const file = join(dir, 'sharded.yaml');
  writeFileSync(
    file,
    `server:
  port: \${PORT}
  host: 127.0.0.1
  showDetails: always
  drainDelay: 0s
  auth: { keys: [{ name: ops, key: "${KEY}" }] }
telemetry: { traces: { enabled: false } }
shard: { index: auto, count: 2 }
defaults:
  interval: 300ms
  timeout: 250ms
  retry: { attempts: 1, backoff: { initial: 10ms, max: 10ms }, jitter: false }
checks:
${NAMES.map((n) => `  - { name: ${n}, kind: http, url: "http://127.0.0.1:${target.port}/c/${n}", headers: { x-probe-by: "\${HOSTNAME}" } }`).join('\n')}
`,
  );
  const replicas = await Promise.all(
    ['mon-0', 'mon-1'].map(async (hostname) => {
      const port = await freePort();
      const env: NodeJS.ProcessEnv = { ...process.env, HOSTNAME: hostname, PORT: String(port), OTEL_TRACES_EXPORTER: 'none' };
      delete env.K8S_POD_NAME;
      delete env.NODE_OPTIONS;
      const proc = spawn(process.execPath, [CLI, 'run', '--config', file], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(proc);
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      return { hostname, port, proc, output: () => out };
    }),
  );
  for (const r of replicas) {
    await waitFor(async () => (await get(r.port, '/readyz')).status === 200, { timeoutMs: 30_000, intervalMs: 50, what: `${r.hostname} ready (${r.output().slice(-400)})` });
  }

  const owned = await Promise.all(
    replicas.map(async (r) => {
      const health = JSON.parse((await get(r.port, '/health')).body) as { checks: Record<string, { status: string }> };
      return Object.keys(health.checks).sort();
    }),
  );
  const [zero, one] = owned as [string[], string[]];
  assert.ok(zero.length > 0 && one.length > 0, `both replicas own something: ${zero.length} + ${one.length}`);
  assert.deepEqual(zero.filter((n) => one.includes(n)), [], 'no check in both replicas');
  assert.deepEqual([...zero, ...one].sort(), [...NAMES].sort(), 'every check in one replica');
  assert.deepEqual(zero, NAMES.filter((n) => shardOf(n, 2) === 0).sort(), 'ordinal 0 owns what the hash gives shard 0');

  for (const [i, r] of replicas.entries()) {
    const mine = owned[i]!;
    // metrics: only owned checks are exported
    const metrics = (await get(r.port, '/metrics')).body;
    const exported = new Set([...metrics.matchAll(/^healthcheck_status\{[^}]*healthcheck_name="([^"]+)"/gm)].map((m) => m[1]!));
    assert.deepEqual([...exported].sort(), mine, `${r.hostname}: /metrics exports exactly its own checks`);
    // diagnostics: the shard block
    const diagnostics = JSON.parse((await get(r.port, '/admin/diagnostics', { authorization: `Bearer ${KEY}` })).body) as { shard: unknown; checks: Record<string, unknown> };
    assert.deepEqual(diagnostics.shard, { index: i, count: 2, indexFrom: 'HOSTNAME', owned: mine.length, total: NAMES.length });
    assert.deepEqual(Object.keys(diagnostics.checks).sort(), mine);
    // the log says which slice this replica took
    assert.match(r.output(), new RegExp(`shard ${i} of 2 \\(index from HOSTNAME\\): probing ${mine.length} of ${NAMES.length} check`));
  }

  // what the target really saw: every check probed, each by exactly its owner
  await waitFor(() => NAMES.every((n) => probedBy.has(`/c/${n}`)), { what: 'every check probed' });
  for (const n of NAMES) {
    assert.deepEqual([...probedBy.get(`/c/${n}`)!], [`mon-${shardOf(n, 2)}`], `${n} probed by its owner only`);
  }
});
