/**
 * Hot reload end to end (SPEC §2): the compiled CLI, a real HTTP server and
 * real Redis behind the fault proxy (to count connections). A valid new config
 * is applied without touching unchanged checks (same state version, same Redis
 * connection); an invalid one is refused with every problem logged; SIGHUP
 * forces a reload; a Kubernetes ConfigMap `..data` symlink swap is noticed;
 * bursts of writes are debounced into one reload. In-process, the refusal is
 * counted in the `healthcheck.config.reload_failures` metric.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AggregationTemporality, MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import pino from 'pino';
import { loadConfigFile } from '../../src/probes/registry';
import { ConfigReloader } from '../../src/config/reload';
import { reloadMetrics } from '../../src/telemetry/instruments';
import { SCOPE } from '../../src/telemetry/semconv';
import { Sidecar } from '../../src/sidecar';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { hostPort, REDIS_URL, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { logLines, startChild, type Child } from '../deploy/support';
import { CLI } from '../helpers/paths';


type HealthJson = { status: string; checks: Record<string, { status: string; version: number; lastSuccessAt: string | number | null; lastCheckedAt: string | number | null }> };

function config(web: string, redis: string, extra = '', tail = ''): string {
  // polled every 20 ms while a busy machine brings the checks up: no anonymous rate limit in the way
  return `server: { port: 0, host: 127.0.0.1, showDetails: always, drainDelay: 0s, auth: { anonymousRateLimit: 100000/1m } }
telemetry: { traces: { enabled: false } }
defaults: { interval: 1s, timeout: 1s, thresholds: { failure: 1, success: 1 } }
checks:
  - name: web
    kind: http
    url: ${web}
  - name: cache
    kind: redis
    url: ${redis}
${extra}${tail}`;
}
const extraCheck = (url: string) => `  - name: extra\n    kind: tcp\n    url: ${url}\n`;

/** Replace a file the way editors and config tools do: write a temp file, rename it over. */
function replaceFile(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

async function startCli(configPath: string, children: Child[]): Promise<{ child: Child; base: string }> {
  const child = startChild(process.execPath, [CLI, 'run', '--config', configPath], { env: { ...process.env, LOG_LEVEL: 'info', OTEL_TRACES_EXPORTER: 'none' } });
  children.push(child); // killed in after(), listening or not
  const port = await waitFor(() => logLines(child.stdout()).find((l) => typeof l.port === 'number' && String(l.msg).startsWith('listening'))?.port as number | undefined, { timeoutMs: 60_000, what: 'sidecar listening' });
  return { child, base: `http://127.0.0.1:${port}` };
}

async function health(base: string): Promise<HealthJson> {
  return (await (await fetch(`${base}/health`)).json()) as HealthJson;
}

const reloads = (child: Child) => logLines(child.stdout()).filter((l) => String(l.msg).startsWith('config reload'));

describe('hot reload of the compiled CLI', () => {
  let web: TestHttpServer;
  let proxy: FaultProxy;
  let dir: string;
  const children: Child[] = [];
  before(async () => {
    web = await startHttpServer((_req, res) => res.end('ok'));
    proxy = await startFaultProxy(hostPort(REDIS_URL));
    dir = mkdtempSync(join(tmpdir(), 'reload-'));
  });
  after(async () => {
    await Promise.all(children.map((c) => c.kill('SIGKILL')));
    await proxy.close();
    await web.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('file change: added check applied, unchanged checks keep state and connection; invalid config refused; SIGHUP reloads', { timeout: 180_000 }, async () => {
    const file = join(dir, 'sidecar.yaml');
    const redisUrl = proxy.url('redis');
    writeFileSync(file, config(web.url, redisUrl));
    const { child, base } = await startCli(file, children);
    const initial = (await waitFor(async () => {
      const h = await health(base);
      return h.checks.web?.status === 'UP' && h.checks.cache?.status === 'UP' ? h : undefined;
    }, { timeoutMs: 30_000, what: 'both checks UP' }))!;
    const connections = proxy.acceptedConnections;
    assert.ok(connections >= 1);

    // 1. a burst of writes (a truncating editor, a half-written file, then the real content) → one debounced reload
    writeFileSync(file, '');
    writeFileSync(file, 'checks:\n  - name: web\n    kind: ht');
    replaceFile(file, config(web.url, redisUrl, extraCheck(`tcp://127.0.0.1:${web.port}`)));
    await waitFor(async () => (await health(base)).checks.extra?.status === 'UP', { timeoutMs: 30_000, what: 'extra check UP after reload' });
    const applied = reloads(child);
    assert.equal(applied.length, 1, JSON.stringify(applied));
    assert.equal(applied[0]!.msg, 'config reloaded: 1 added, 0 changed, 0 removed');
    assert.deepEqual([applied[0]!.trigger, applied[0]!.added, applied[0]!.changed, applied[0]!.removed], ['file', ['extra'], [], []]);

    // unchanged checks: same version (no flap through UNKNOWN), still probing, same Redis connection
    const afterAdd = (await waitFor(async () => {
      const h = await health(base);
      return h.checks.cache!.lastCheckedAt !== initial.checks.cache!.lastCheckedAt && h.checks.web!.lastCheckedAt !== initial.checks.web!.lastCheckedAt ? h : undefined;
    }, { what: 'unchanged checks probed again' }))!;
    for (const name of ['web', 'cache']) {
      assert.equal(afterAdd.checks[name]!.status, 'UP');
      assert.equal(afterAdd.checks[name]!.version, initial.checks[name]!.version, `${name} keeps its state version`);
    }
    assert.equal(proxy.acceptedConnections, connections, 'the Redis connection of the unchanged check was kept');

    // 2. invalid config (two problems) → refused, every problem logged with FILE:LINE:COL, old config keeps running
    replaceFile(file, config(web.url, redisUrl, extraCheck(`tcp://127.0.0.1:${web.port}`).replace('kind: tcp', 'kind: tcp\n    colour: blue'), 'defaultz: {}\n'));
    const rejected = (await waitFor(() => reloads(child).find((l) => l.msg !== undefined && String(l.msg).startsWith('config reload rejected')), { timeoutMs: 30_000, what: 'reload rejected' }))!;
    assert.equal(rejected.msg, 'config reload rejected (2 problem(s)); keeping the running config');
    assert.equal(rejected.level, 'error');
    assert.deepEqual(rejected.problems, [`${file}:13:5 checks[2].colour: unknown key`, `${file}:15:1 defaultz: unknown key (did you mean "defaults"?)`]);
    // the burst above was one reload: nothing between the applied one and this refusal (the empty and the
    // half-written file would each have been refused with their own problems had they been read)
    assert.deepEqual(reloads(child).map((l) => l.msg), [applied[0]!.msg, rejected.msg]);
    // each problem on its own log line (written after the summary line: wait for them, stdout is asynchronous)
    for (const problem of rejected.problems as string[]) {
      await waitFor(() => logLines(child.stdout()).some((l) => l.msg === problem), { timeoutMs: 30_000, what: `the problem on its own log line: ${problem}` });
    }
    // counted in the metric, as Prometheus sees it
    const exposition = await (await fetch(`${base}/metrics`)).text();
    assert.match(exposition, /^healthcheck_config_reload_failures_total\{healthcheck_reload_trigger="file",otel_scope_name="otel-health-sidecar"\} 1$/m);
    assert.match(exposition, /^healthcheck_config_reloads_total\{healthcheck_reload_trigger="file",otel_scope_name="otel-health-sidecar"\} 1$/m);
    const stillRunning = await health(base);
    assert.deepEqual(Object.keys(stillRunning.checks).sort(), ['cache', 'extra', 'web']);
    assert.equal(stillRunning.checks.web!.version, initial.checks.web!.version);

    // 3. fix the file (removing extra) → applied; then SIGHUP with unchanged bytes still reloads
    replaceFile(file, config(web.url, redisUrl));
    await waitFor(() => reloads(child).some((l) => l.msg === 'config reloaded: 0 added, 0 changed, 1 removed'), { timeoutMs: 30_000, what: 'extra removed' });
    assert.deepEqual(Object.keys((await health(base)).checks).sort(), ['cache', 'web']);
    const count = reloads(child).length;
    child.proc.kill('SIGHUP');
    const hup = (await waitFor(() => reloads(child).slice(count).find((l) => l.trigger === 'sighup'), { timeoutMs: 30_000, what: 'SIGHUP reload' }))!;
    assert.equal(hup.msg, 'config reloaded: 0 added, 0 changed, 0 removed');
    assert.equal(proxy.acceptedConnections, connections, 'still the same Redis connection after three reloads');
    assert.equal((await health(base)).checks.cache!.version, initial.checks.cache!.version);

    child.proc.kill('SIGTERM');
    assert.deepEqual(await child.exited, { code: 0, signal: null });
  });

  test('Kubernetes ConfigMap update (..data symlink swap) is picked up', { timeout: 180_000 }, async () => {
    const mount = join(dir, 'configmap');
    mkdirSync(join(mount, '..2025_01_01_00_00_00.000000001'), { recursive: true });
    writeFileSync(join(mount, '..2025_01_01_00_00_00.000000001', 'sidecar.yaml'), config(web.url, proxy.url('redis')));
    symlinkSync('..2025_01_01_00_00_00.000000001', join(mount, '..data'));
    symlinkSync('..data/sidecar.yaml', join(mount, 'sidecar.yaml'));
    const { child, base } = await startCli(join(mount, 'sidecar.yaml'), children);
    await waitFor(async () => (await health(base)).checks.web?.status === 'UP', { timeoutMs: 30_000, what: 'web UP' });
    const version = (await health(base)).checks.web!.version;

    // what the kubelet's AtomicWriter does: new timestamped dir, ..data_tmp symlink, rename over ..data, remove the old dir
    mkdirSync(join(mount, '..2025_01_01_00_01_00.000000002'));
    writeFileSync(join(mount, '..2025_01_01_00_01_00.000000002', 'sidecar.yaml'), config(web.url, proxy.url('redis'), extraCheck(`tcp://127.0.0.1:${web.port}`)));
    symlinkSync('..2025_01_01_00_01_00.000000002', join(mount, '..data_tmp'));
    renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
    rmSync(join(mount, '..2025_01_01_00_00_00.000000001'), { recursive: true });

    await waitFor(async () => (await health(base)).checks.extra?.status === 'UP', { timeoutMs: 30_000, what: 'extra check from the swapped ConfigMap' });
    assert.equal((await health(base)).checks.web!.version, version);
    assert.deepEqual(reloads(child).map((l) => [l.trigger, l.msg]), [['file', 'config reloaded: 1 added, 0 changed, 0 removed']]);
    child.proc.kill('SIGTERM');
    assert.deepEqual(await child.exited, { code: 0, signal: null });
  });
});

class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
  async sums(): Promise<Record<string, number>> {
    const { resourceMetrics } = await this.collect();
    const out: Record<string, number> = {};
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics as MetricData[]) {
        out[metric.descriptor.name] = metric.dataPoints.reduce((sum, p) => sum + (p.value as number), 0);
      }
    }
    return out;
  }
}

describe('ConfigReloader in process', () => {
  let dir: string;
  let web: TestHttpServer;
  let sidecar: Sidecar;
  let reader: CollectingReader;
  let provider: MeterProvider;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'reloader-'));
    web = await startHttpServer((_req, res) => res.end('ok'));
    reader = new CollectingReader();
    provider = new MeterProvider({ readers: [reader] });
  });
  after(async () => {
    await sidecar?.shutdown({ drain: false });
    await web.close();
    await provider.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an invalid config is refused, every problem reported and counted; a valid one is applied and counted', async () => {
    const file = join(dir, 'sidecar.yaml');
    const valid = `server: { port: 0, host: 127.0.0.1 }\ndefaults: { interval: 1s, timeout: 500ms }\nchecks:\n  - { name: web, kind: http, url: '${web.url}' }\n`;
    writeFileSync(file, valid);
    sidecar = new Sidecar(loadConfigFile(file), pino({ level: 'silent' }));
    await sidecar.start();
    const logged: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) });
    const reloader = new ConfigReloader({ file, target: sidecar, logger, watch: false, sighup: false, load: (f) => loadConfigFile(f), metrics: reloadMetrics(provider.getMeter(SCOPE)) }).start();
    try {
      const start = reloader.stats();
      assert.deepEqual(await reader.sums(), { 'healthcheck.config.reload_failures': 0, 'healthcheck.config.reloads': 0 });

      writeFileSync(file, `${valid}  - { name: bad, kind: http, url: 'ftp://x', interval: soon }\n`);
      const refused = await reloader.reload('manual');
      const problems = [`${file}:5:35 checks[1].url: scheme must be http or https, not ftp`, `${file}:5:56 checks[1].interval: must be a duration such as "250ms", "5s" or "1m"`];
      assert.deepEqual(refused, { status: 'rejected', trigger: 'manual', problems });
      assert.deepEqual(sidecar.config.checks.map((c) => c.name), ['web'], 'old config kept');
      assert.deepEqual(await reader.sums(), { 'healthcheck.config.reload_failures': 1, 'healthcheck.config.reloads': 0 });
      assert.equal(reloader.stats().failures, start.failures + 1);
      assert.equal(reloader.stats().lastFailure?.problems.length, 2);
      // the summary line plus one line per problem
      assert.deepEqual(logged.map((l) => l.msg), ['config reload rejected (2 problem(s)); keeping the running config', ...problems]);

      writeFileSync(file, `${valid}  - { name: tcp, kind: tcp, url: 'tcp://127.0.0.1:${web.port}' }\n`);
      assert.deepEqual(await reloader.reload('manual'), { status: 'applied', trigger: 'manual', added: ['tcp'], changed: [], removed: [] });
      assert.deepEqual(sidecar.config.checks.map((c) => c.name), ['web', 'tcp']);
      assert.deepEqual(await reader.sums(), { 'healthcheck.config.reload_failures': 1, 'healthcheck.config.reloads': 1 });

      // a file event with unchanged bytes does nothing; concurrent reloads are serialised
      assert.deepEqual(await reloader.reload('file'), { status: 'unchanged', trigger: 'file' });
      const [a, b, c] = await Promise.all([reloader.reload('manual'), reloader.reload('manual'), reloader.reload('manual')]);
      assert.equal(a.status, 'applied');
      assert.equal(b, c, 'a third reload during the first joins the queued second');
      assert.deepEqual(await reader.sums(), { 'healthcheck.config.reload_failures': 1, 'healthcheck.config.reloads': 3 });
    } finally {
      reloader.stop();
    }
  });
});
