/**
 * A collector that refuses connections or black-holes them must cost the
 * sidecar nothing but a counter and one log line a minute: probes keep their
 * cadence (runs counted over the same window, compared as a ratio with a run
 * without any collector), the heap stays bounded, and SIGTERM still exits 0
 * within drainDelay + the flush bound.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { freePort, REDIS_URL, startHttpServer, type TestHttpServer } from '../helpers/servers';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS } from '../../src/telemetry/sdk';
import { ensureBuilt, get, parsePrometheus, startCli } from './support';

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
  exportFailures: number;
  heapUsedBytes: number;
  exportLogLines: string[];
  exit: { code: number | null; signal: NodeJS.Signals | null; ms: number };
}

async function scrape(port: number) {
  const families = parsePrometheus((await get(port, '/metrics')).body);
  const sum = (name: string, filter: (labels: Record<string, string>) => boolean = () => true) =>
    (families.get(name)?.samples ?? []).filter((s) => filter(s.labels)).reduce((total, s) => total + s.value, 0);
  return {
    attempts: sum('healthcheck_probe_attempts_total'),
    exportFailures: sum('healthcheck_telemetry_export_failures_total'),
    heapUsed: sum('v8js_memory_heap_used_bytes'),
  };
}

async function measure(webUrl: string, env: Record<string, string>): Promise<Measurement> {
  const cli = await startCli(yaml(webUrl), env);
  try {
    await new Promise((r) => setTimeout(r, 500)); // past start-up and the first connections
    const start = await scrape(cli.port);
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const end = await scrape(cli.port);
    const exit = await cli.stop('SIGTERM');
    return {
      runs: (end.attempts - start.attempts) / 2,
      exportFailures: end.exportFailures,
      heapUsedBytes: end.heapUsed,
      exportLogLines: cli.lines.filter((l) => l.includes('trace export to')),
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
  const OTLP_ENV = { OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_EXPORTER_OTLP_TIMEOUT: '1000', OTEL_BSP_EXPORT_TIMEOUT: '1000' };

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

  it('the baseline keeps the configured cadence', () => {
    const expected = WINDOW_MS / INTERVAL_MS;
    assert.ok(baseline.runs >= expected * 0.5 && baseline.runs <= expected * 1.2, `baseline ran ${baseline.runs} times, expected about ${expected}`);
  });

  for (const [label, get] of [
    ['refused', () => refused],
    ['black-holed', () => blackholed],
  ] as const) {
    it(`${label}: the same cadence as without a collector (ratio)`, () => {
      const ratio = get().runs / baseline.runs;
      assert.ok(ratio >= 0.75, `${label}: ${get().runs} runs vs ${baseline.runs} without a collector (ratio ${ratio.toFixed(2)})`);
    });

    it(`${label}: failures counted, one log line (at most one a minute), no spans delivered`, () => {
      assert.ok(get().exportFailures >= 1, `export failures counter ${get().exportFailures}`);
      assert.equal(get().exportLogLines.length, 1, get().exportLogLines.join('\n'));
      const record = JSON.parse(get().exportLogLines[0]!) as Record<string, unknown>;
      assert.equal(record.level, 'warn');
    });

    it(`${label}: heap bounded (not more than the baseline's plus a margin)`, () => {
      const limit = baseline.heapUsedBytes * 1.5 + 16 * 1024 * 1024;
      assert.ok(get().heapUsedBytes <= limit, `${label}: heap ${get().heapUsedBytes} > ${limit} (baseline ${baseline.heapUsedBytes})`);
    });

    it(`${label}: SIGTERM exits 0 within drainDelay + flush bound + margin`, () => {
      assert.deepEqual({ code: get().exit.code, signal: get().exit.signal }, { code: 0, signal: null });
      assert.ok(get().exit.ms < DRAIN_MS + DEFAULT_SHUTDOWN_TIMEOUT_MS + 3000, `${label}: exit took ${Math.round(get().exit.ms)} ms`);
    });
  }

  it('the black hole really held connections (the exporter did try) and the receiver behind it got nothing', () => {
    assert.ok(blackhole.acceptedConnections >= 1);
    assert.equal(receiver.requests.length, 0);
  });

  it('without a collector there is nothing to fail and the baseline exits promptly too', (t) => {
    for (const [label, m] of Object.entries({ baseline, refused, blackholed })) {
      t.diagnostic(`${label}: ${m.runs} runs/check in ${WINDOW_MS} ms, ${m.exportFailures} failed exports, heap ${(m.heapUsedBytes / 1048576).toFixed(1)} MiB, exit ${m.exit.code} after ${Math.round(m.exit.ms)} ms`);
    }
    assert.deepEqual({ failures: baseline.exportFailures, lines: baseline.exportLogLines, code: baseline.exit.code }, { failures: 0, lines: [], code: 0 });
  });
});
