/**
 * A collector that refuses connections or black-holes them must cost the
 * sidecar nothing but a counter and one log line a minute: probes keep their
 * cadence (runs per second over a measured window, compared as a ratio with a
 * run without any collector), the heap stays bounded (against that same
 * baseline), and SIGTERM still exits 0 by itself (the flush is bounded; a hang
 * would be killed by the stop guard and seen as SIGKILL).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { freePort, REDIS_URL, sleep, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { parsePrometheus, startCli } from './support';
import { ensureBuilt } from '../helpers/paths';
import { get } from '../helpers/http';

const INTERVAL_MS = 100;
const WINDOW_MS = 4000;
const DRAIN_MS = 200;

const yaml = (webUrl: string) => `
server: { port: 0, host: 127.0.0.1, drainDelay: ${DRAIN_MS}ms, auth: { anonymousRateLimit: 10000/1m } }
defaults: { interval: ${INTERVAL_MS}ms, timeout: 90ms, retry: { attempts: 1 } }
checks:
  - { name: cache, kind: redis, url: "${REDIS_URL}" }
  - { name: web, kind: http, url: "${webUrl}/" }
`;

interface Measurement {
  /** runs of each check during the window */
  runs: number;
  /** the window as it really lasted (a busy machine stretches timers) */
  windowMs: number;
  exportFailures: number;
  /** failed exports by signal (healthcheck_telemetry_export_failures_total{healthcheck_telemetry_signal}) */
  failuresBy: Record<string, number>;
  heapUsedBytes: number;
  exportLogLines: string[];
  /** the rate-limited warnings of the metrics and logs exporters */
  signalLogLines: Record<'metrics' | 'logs', string[]>;
  exit: { code: number | null; signal: NodeJS.Signals | null; ms: number };
}

async function scrape(port: number) {
  const families = parsePrometheus((await get(port, '/metrics')).body);
  const sum = (name: string, filter: (labels: Record<string, string>) => boolean = () => true) =>
    (families.get(name)?.samples ?? []).filter((s) => filter(s.labels)).reduce((total, s) => total + s.value, 0);
  return {
    attempts: sum('healthcheck_probe_attempts_total'),
    exportFailures: sum('healthcheck_telemetry_export_failures_total'),
    failuresBy: Object.fromEntries(['traces', 'metrics', 'logs'].map((signal) => [signal, sum('healthcheck_telemetry_export_failures_total', (l) => l.healthcheck_telemetry_signal === signal)])),
    heapUsed: sum('v8js_memory_heap_used_bytes'),
  };
}

async function measure(webUrl: string, env: Record<string, string>): Promise<Measurement> {
  const cli = await startCli(yaml(webUrl), env);
  try {
    // past start-up: both checks have run
    await waitFor(async () => (await scrape(cli.port)).attempts >= 2, { what: 'the first runs of both checks', timeoutMs: 30_000 });
    const start = await scrape(cli.port);
    const startedAt = performance.now();
    await sleep(WINDOW_MS);
    const end = await scrape(cli.port);
    const windowMs = performance.now() - startedAt;
    const exit = await cli.stop('SIGTERM');
    return {
      runs: (end.attempts - start.attempts) / 2,
      windowMs,
      exportFailures: end.exportFailures,
      failuresBy: end.failuresBy,
      heapUsedBytes: end.heapUsed,
      exportLogLines: cli.lines.filter((l) => l.includes('trace export to')),
      signalLogLines: { metrics: cli.lines.filter((l) => l.includes('metrics export to')), logs: cli.lines.filter((l) => l.includes('logs export to')) },
      exit,
    };
  } finally {
    cli.kill();
  }
}

describe('collector down or black-holed: probes keep their cadence, memory bounded, clean exit', () => {
  let web: TestHttpServer;
  let receiver: OtlpReceiver;
  let blackhole: FaultProxy;
  let baseline: Measurement;
  let refused: Measurement;
  let blackholed: Measurement;
  // all three signals pushed: traces, metrics (every 200 ms, beside /metrics) and logs
  const OTLP_ENV = {
    OTEL_BSP_SCHEDULE_DELAY: '50',
    OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
    OTEL_BSP_EXPORT_TIMEOUT: '1000',
    OTEL_METRICS_EXPORTER: 'prometheus,otlp',
    OTEL_METRIC_EXPORT_INTERVAL: '200',
    OTEL_LOGS_EXPORTER: 'otlp',
    OTEL_BLRP_SCHEDULE_DELAY: '50',
    OTEL_BLRP_EXPORT_TIMEOUT: '1000',
  };

  before(async () => {
    ensureBuilt();
    web = await startHttpServer((_req, res) => res.writeHead(200).end('ok'));
    receiver = await startOtlpReceiver();
    blackhole = await startFaultProxy({ host: '127.0.0.1', port: receiver.port });
    blackhole.setMode('blackhole');
    const closedPort = await freePort();
    baseline = await measure(web.url, {});
    refused = await measure(web.url, { ...OTLP_ENV, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${closedPort}` });
    blackholed = await measure(web.url, { ...OTLP_ENV, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${blackhole.port}` });
  });

  after(async () => {
    await blackhole?.close();
    await receiver?.close();
    await web?.close();
  });

  it('the baseline ran its checks on their schedule: enough runs to compare with, never more than the fixed rate allows', () => {
    // the rate itself is proven on a fake clock (test/health/scheduler.test.ts); here the baseline only has to be usable
    assert.ok(baseline.runs >= 5, `baseline ran ${baseline.runs} times in ${Math.round(baseline.windowMs)} ms: too few to compare with`);
    // fixed rate: one run per interval, no catch-up bursts (plus one for the run that may straddle each edge of the window)
    assert.ok(baseline.runs <= baseline.windowMs / INTERVAL_MS + 2, `baseline ran ${baseline.runs} times in ${Math.round(baseline.windowMs)} ms at a ${INTERVAL_MS} ms interval`);
  });

  for (const [label, get] of [
    ['refused', () => refused],
    ['black-holed', () => blackholed],
  ] as const) {
    it(`${label}: the same cadence as without a collector (ratio of runs per second)`, () => {
      const ratio = get().runs / get().windowMs / (baseline.runs / baseline.windowMs);
      assert.ok(ratio >= 0.75, `${label}: ${get().runs} runs in ${Math.round(get().windowMs)} ms vs ${baseline.runs} in ${Math.round(baseline.windowMs)} ms without a collector (ratio ${ratio.toFixed(2)})`);
    });

    it(`${label}: failures counted, one log line (at most one a minute), no spans delivered`, () => {
      assert.ok(get().exportFailures >= 1, `export failures counter ${get().exportFailures}`);
      assert.equal(get().exportLogLines.length, 1, get().exportLogLines.join('\n'));
      const record = JSON.parse(get().exportLogLines[0]!) as Record<string, unknown>;
      assert.equal(record.level, 'warn');
    });

    it(`${label}: metrics and logs exports failed too: counted per signal, one warning each (at most one a minute)`, () => {
      assert.ok(get().failuresBy.metrics! >= 1 && get().failuresBy.logs! >= 1 && get().failuresBy.traces! >= 1, JSON.stringify(get().failuresBy));
      for (const signal of ['metrics', 'logs'] as const) {
        assert.equal(get().signalLogLines[signal].length, 1, `${signal}: ${get().signalLogLines[signal].join('\n')}`);
        const record = JSON.parse(get().signalLogLines[signal][0]!) as Record<string, unknown>;
        assert.deepEqual({ level: record.level, signal: record.signal }, { level: 'warn', signal });
      }
    });

    it(`${label}: heap bounded (not more than the baseline's plus a margin)`, () => {
      const limit = baseline.heapUsedBytes * 1.5 + 16 * 1024 * 1024;
      assert.ok(get().heapUsedBytes <= limit, `${label}: heap ${get().heapUsedBytes} > ${limit} (baseline ${baseline.heapUsedBytes})`);
    });

    it(`${label}: SIGTERM exits 0 by itself: the flush to a dead collector is bounded (not killed by the stop guard)`, () => {
      assert.deepEqual({ code: get().exit.code, signal: get().exit.signal }, { code: 0, signal: null }, `${label}: exit after ${Math.round(get().exit.ms)} ms`);
    });
  }

  it('the black hole really held connections (the exporter did try) and the receiver behind it got nothing', () => {
    assert.ok(blackhole.acceptedConnections >= 1);
    assert.equal(receiver.requests.length, 0);
  });

  it('without a collector there is nothing to fail and the baseline exits promptly too', (t) => {
    for (const [label, m] of Object.entries({ baseline, refused, blackholed })) {
      t.diagnostic(`${label}: ${m.runs} runs/check in ${Math.round(m.windowMs)} ms, ${m.exportFailures} failed exports, heap ${(m.heapUsedBytes / 1048576).toFixed(1)} MiB, exit ${m.exit.code} after ${Math.round(m.exit.ms)} ms`);
    }
    assert.deepEqual({ failures: baseline.exportFailures, lines: baseline.exportLogLines, code: baseline.exit.code }, { failures: 0, lines: [], code: 0 });
  });
});
