/**
 * The sidecar's resource requests/limits in deploy/kustomize/base come from a
 * measurement, not a guess: the shipped bundle (scripts/bundle.mjs, what the
 * image's ENTRYPOINT runs) runs the default config (all four
 * checks live against real Redis, PostgreSQL and an HTTP app, telemetry as
 * configured) for ~10 s while being probed and scraped like in a pod; its RSS
 * is sampled from /proc. The memory request must cover the steady RSS and the
 * limit must leave at least 50% headroom over the peak (VmHWM).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DATABASE_URL, freePort, REDIS_URL, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { DEPLOY, kustomize, startChild, type Child } from './support';
import { ensureBuilt, ROOT } from '../helpers/paths';
import { run } from './support';

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `${field} in /proc/${pid}/status`);
  return Number(m[1]);
}
const mi = (q: string) => Number(/^(\d+)Mi$/.exec(q)?.[1] ?? NaN);
/** the node flags of the image's ENTRYPOINT (e.g. --max-semi-space-size): measured as shipped */
/** the environment of the image's ENV lines (NODE_ENV, MALLOC_ARENA_MAX) */
const imageEnv = (): Record<string, string> =>
  Object.fromEntries([...readFileSync(join(ROOT, 'Dockerfile'), 'utf8').matchAll(/^ENV (.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)])));
const entrypointNodeFlags = (): string[] => (JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))![1]!) as string[]).filter((w) => w.startsWith('--'));

interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  resources: { requests: { memory: string }; limits: { memory: string } };
}

let app: TestHttpServer | undefined;
let child: Child | undefined;
let bundle: string | undefined;
after(async () => {
  await child?.kill('SIGKILL');
  await app?.close();
  if (bundle) rmSync(bundle, { recursive: true, force: true });
});

test('sidecar memory request/limit match the measured RSS of the shipped bundle under probing and scraping', { timeout: 300_000 }, async (t) => {
  // the shipped artifact, built beside package.json and node_modules (ioredis, pg, pino resolve from there)
  ensureBuilt();
  bundle = mkdtempSync(join(ROOT, '.test-bundle-'));
  const bundled = await run(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), '--outdir', bundle], { cwd: ROOT });
  assert.equal(bundled.code, 0, bundled.stderr);
  // the sidecar container as the component adds it (kubectl kustomize of the sample base): run as shipped
  const deployment = kustomize(join(DEPLOY, 'kustomize/base')).find((o) => o.kind === 'Deployment') as unknown as { spec: { template: { spec: { initContainers: Container[] } } } };
  const container = deployment.spec.template.spec.initContainers.find((c) => c.name === 'health-sidecar')!;
  const nodeOptions = container.env?.find((e) => e.name === 'NODE_OPTIONS')?.value;
  app = await startHttpServer((_req, res) => res.end('ok'));
  const port = await freePort();
  // the container's flags beyond its config file, as shipped (--probe-port: the kubelet listener's thread is part of what a pod pays)
  const args = container.args ?? [];
  const flags = args.slice(args.indexOf('--config') + 2);
  const probeFlag = flags.indexOf('--probe-port');
  const probePort = probeFlag >= 0 ? await freePort() : port;
  if (probeFlag >= 0) flags[probeFlag + 1] = String(probePort);
  child = startChild(process.execPath, [...entrypointNodeFlags(), join(bundle, 'cli.js'), 'run', '--config', 'config/sidecar.yaml', ...flags], {
    env: { ...process.env, ...imageEnv(), ...(nodeOptions === undefined ? {} : { NODE_OPTIONS: nodeOptions }), PORT: String(port), HOST: '127.0.0.1', DRAIN_DELAY: '0s', APP_URL: `${app.url}/healthz`, REDIS_URL, DATABASE_URL, LOG_LEVEL: 'warn', NODE_ENV: 'production' },
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, { timeoutMs: 30_000, what: 'sidecar ready with all checks' });
  const health = (await (await fetch(`${base}/health`)).json()) as { checks: Record<string, unknown> };
  assert.deepEqual(Object.keys(health.checks).sort(), ['app', 'cache', 'db', 'self'], 'all four default checks run (none skipped)');

  const pid = child.proc.pid!;
  const samples: number[] = [];
  // long enough for scrape garbage to reach a major GC (or, without a heap cap, to show it piling up)
  const until = Date.now() + 40_000;
  while (Date.now() < until) {
    // what a pod sees: kubelet probes every few seconds, Prometheus scrapes, a human looks at /health
    // (the kubelet asks its own port when the container has one)
    await Promise.all([
      ...['/readyz', '/livez', '/startupz'].map((p) => `http://127.0.0.1:${probePort}${p}`),
      ...['/metrics', '/health'].map((p) => `${base}${p}`),
    ].map((url) => fetch(url).then((r) => r.arrayBuffer()).catch(() => undefined)));
    samples.push(statusKb(pid, 'VmRSS'));
    await new Promise((r) => setTimeout(r, 100));
  }
  const steadyMi = Math.max(...samples.slice(Math.floor(samples.length / 2))) / 1024;
  const firstMi = samples[0]! / 1024;
  const peakMi = statusKb(pid, 'VmHWM') / 1024;
  t.diagnostic(`flags ${flags.join(' ') || '(none)'}; sidecar RSS: steady ${steadyMi.toFixed(1)} MiB (max of the last 20 s; ${firstMi.toFixed(1)} MiB at the first sample), peak ${peakMi.toFixed(1)} MiB over ${samples.length} samples`);

  const resources = container.resources;
  assert.ok(mi(resources.requests.memory) >= steadyMi, `request ${resources.requests.memory} covers the steady RSS ${steadyMi.toFixed(1)} MiB`);
  assert.ok(mi(resources.limits.memory) >= 1.5 * peakMi, `limit ${resources.limits.memory} leaves 50% headroom over the peak ${peakMi.toFixed(1)} MiB`);
  // and is not absurdly oversized (requests reserve node memory for every replica)
  assert.ok(mi(resources.requests.memory) <= 2 * steadyMi + 32, `request ${resources.requests.memory} is not more than 2x the steady RSS + 32 MiB`);

  child.proc.kill('SIGTERM');
  assert.deepEqual(await child.exited, { code: 0, signal: null });
});
