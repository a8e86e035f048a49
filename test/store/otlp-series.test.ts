/**
 * Issue 20: a deleted monitor's series leave the OTLP metrics export too
 * (as they leave /metrics): the SDK keeps a cumulative series for the life
 * of the process, so the exporter leaves out those of checks that are gone.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ensureBuilt } from '../helpers/paths';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { startHttpServer, type TestHttpServer } from '../helpers/servers';
import { api, privateDatabase, startMonitor, type MonitorProcess, type PrivateDatabase } from '../helpers/monitor-store';

const KEY = 'otlp-series-key-0123456789';
let db: PrivateDatabase;
let target: TestHttpServer;
let receiver: OtlpReceiver;
let monitor: MonitorProcess;

before(async () => {
  ensureBuilt();
  db = await privateDatabase();
  target = await startHttpServer((_req, res) => res.end('ok'));
  receiver = await startOtlpReceiver();
  monitor = await startMonitor(
    (port) => `mode: monitor
server: { port: ${port}, host: 127.0.0.1, drainDelay: 0s, auth: { keys: [{ name: ops, key: "${KEY}" }] } }
telemetry: { traces: { enabled: false } }
store: { postgres: \${STORE_URL} }
defaults: { interval: 100ms, timeout: 90ms, retry: { attempts: 1, backoff: { initial: 10ms, max: 10ms }, jitter: false } }
checks:
  - { name: kept, kind: http, url: "http://127.0.0.1:${target.port}/kept" }
`,
    { STORE_URL: db.url, OTEL_METRICS_EXPORTER: 'prometheus,otlp', OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_METRIC_EXPORT_INTERVAL: '200' },
  );
});

after(async () => {
  await monitor?.stop();
  await receiver?.close();
  await target?.close();
  await db?.drop();
});

/** the check names with a healthcheck.* point in the metrics of one export request */
const namesIn = (request: number) =>
  new Set(receiver.metrics.filter((m) => m.request === request && m.name.startsWith('healthcheck.')).flatMap((m) => m.points.map((p) => p.attributes['healthcheck.name'])).filter((n): n is string => typeof n === 'string'));
const lastRequest = () => Math.max(-1, ...receiver.metrics.map((m) => m.request ?? -1));

test('a deleted monitor is in the OTLP export while it exists, and gone from the next exports', async () => {
  const { port } = monitor;
  assert.equal((await api(port, 'POST', '/api/v1/monitors', KEY, { name: 'brief', kind: 'http', url: `http://127.0.0.1:${target.port}/brief` })).status, 201);
  await receiver.until(() => namesIn(lastRequest()).has('brief'), 'brief exported');
  assert.equal((await api(port, 'DELETE', '/api/v1/monitors/brief', KEY)).status, 200);
  const deletedBy = lastRequest();
  // two exports started after the delete answered
  await receiver.until(() => lastRequest() >= deletedBy + 2, 'two more exports');
  const latest = namesIn(lastRequest());
  assert.ok(latest.has('kept'), `the file check is still exported: ${[...latest]}`);
  assert.ok(!latest.has('brief'), `the deleted monitor is not: ${[...latest]}`);
  assert.deepEqual(receiver.errors, []);
});
