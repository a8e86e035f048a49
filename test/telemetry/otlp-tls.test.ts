/**
 * All three signals to a collector that speaks only TLS and asks for a client
 * certificate (mutual TLS, a Collector with `tls.cert_file` and
 * `tls.client_ca_file`), gzip-compressed, configured by the standard
 * variables only: OTEL_EXPORTER_OTLP_CERTIFICATE (the CA to trust),
 * OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE / _CLIENT_KEY and
 * OTEL_EXPORTER_OTLP_COMPRESSION=gzip, over http/protobuf and gRPC.
 *
 * Every batch interval is an hour, so what arrives was flushed by SIGTERM:
 * the shutdown sends traces, metrics and logs before a clean exit.
 * Controls: without the client certificate the receiver refuses the
 * handshake and nothing arrives; each signal's exporter says so once, and
 * one signal's failed flush does not cut the others' short; without the CA
 * file the sidecar does not trust the collector.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCa, makeClientCert, makeServerCert } from '../helpers/certs';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { get } from '../helpers/http';
import { ensureBuilt } from '../helpers/paths';
import { startCli } from './support';

const yaml = (webUrl: string) => `
server: { port: 0, host: 127.0.0.1, drainDelay: 0ms }
telemetry: { serviceName: otlp-tls-test }
defaults: { interval: 1h, timeout: 2s, retry: { attempts: 1 } }
checks:
  - { name: web, kind: http, url: "${webUrl}/" }
`;

/** nothing leaves before SIGTERM: every batch waits an hour */
const HOUR_BATCHES = {
  OTEL_METRICS_EXPORTER: 'otlp',
  OTEL_LOGS_EXPORTER: 'otlp',
  OTEL_METRIC_EXPORT_INTERVAL: '3600000',
  OTEL_BSP_SCHEDULE_DELAY: '3600000',
  OTEL_BLRP_SCHEDULE_DELAY: '3600000',
  OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
};

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

describe('OTLP over mutual TLS with gzip: the standard variables only', () => {
  let dir: string;
  let files: { ca: string; clientCert: string; clientKey: string };
  let receiver: OtlpReceiver;
  let web: TestHttpServer;

  before(async () => {
    ensureBuilt();
    const ca = await makeCa(2, 'OTLP test CA');
    const [server, client] = await Promise.all([makeServerCert(ca, 2), makeClientCert(ca, 2, 'sidecar-client')]);
    dir = mkdtempSync(join(tmpdir(), 'otlp-tls-'));
    files = { ca: join(dir, 'ca.pem'), clientCert: join(dir, 'client.pem'), clientKey: join(dir, 'client.key') };
    writeFileSync(files.ca, ca.cert);
    writeFileSync(files.clientCert, client.cert);
    writeFileSync(files.clientKey, client.key, { mode: 0o600 });
    receiver = await startOtlpReceiver({ grpc: true, tls: { cert: server.cert, key: server.key, clientCa: ca.cert } });
    web = await startHttpServer((_req, res) => res.writeHead(200).end('ok'));
  });

  after(async () => {
    await receiver?.close();
    await web?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** run the CLI until its check is UP, then SIGTERM; what the receiver got from this run (tagged by resource) */
  async function runOnce(run: string, env: Record<string, string>) {
    const cli = await startCli(yaml(web.url), { ...HOUR_BATCHES, ...env, OTEL_RESOURCE_ATTRIBUTES: `test.run=${run}` });
    try {
      await waitFor(async () => (await get(cli.port, '/readyz')).status === 200, { what: 'web UP' });
      const exit = await cli.stop('SIGTERM');
      const ours = <T extends { resource: Record<string, unknown> }>(list: readonly T[]) => list.filter((x) => x.resource['test.run'] === run);
      return { exit, cli, spans: ours(receiver.spans), metrics: ours(receiver.metrics), logs: ours(receiver.logs) };
    } finally {
      cli.kill();
    }
  }

  for (const protocol of ['http/protobuf', 'grpc'] as const) {
    it(`${protocol}: traces, metrics and logs arrive over mutual TLS, gzipped, flushed by SIGTERM`, async () => {
      const requestsBefore = receiver.requests.length;
      const got = await runOnce(`tls-${protocol}`, {
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT: protocol === 'grpc' ? receiver.grpcUrl! : receiver.url,
        OTEL_EXPORTER_OTLP_CERTIFICATE: files.ca,
        OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: files.clientCert,
        OTEL_EXPORTER_OTLP_CLIENT_KEY: files.clientKey,
      });
      assert.deepEqual({ code: got.exit.code, signal: got.exit.signal }, { code: 0, signal: null });
      assert.deepEqual(receiver.errors, []);
      // all three signals, each with what proves it is ours
      assert.ok(got.spans.some((s) => s.name === 'healthcheck web'), `spans: ${got.spans.map((s) => s.name).join(', ')}`);
      const duration = got.metrics.find((m) => m.name === 'healthcheck.probe.duration');
      assert.equal(duration?.points.find((p) => p.attributes['healthcheck.name'] === 'web')?.count, 1);
      assert.ok(got.logs.some((r) => r.body === 'check web UNKNOWN → UP'));
      assert.ok(got.logs.some((r) => r.body === 'stopped'), 'the last record, written during shutdown, was flushed');
      assert.equal(duration.resource['service.name'], 'otlp-tls-test');
      // every request came over TLS with our client certificate
      const requests = receiver.requests.slice(requestsBefore);
      assert.deepEqual([...new Set(requests.map((r) => r.path))].sort(), ['/v1/logs', '/v1/metrics', '/v1/traces']);
      assert.deepEqual([...new Set(requests.map((r) => r.clientCert))], ['sidecar-client']);
      // gzip: over HTTP the body as sent is a gzip stream. (gRPC compresses each message and its server
      // library inflates it before the handler, grpc-encoding included, so the receiver cannot see it there.)
      if (protocol === 'http/protobuf') {
        for (const r of requests) {
          assert.equal(r.headers['content-encoding'], 'gzip', r.path);
          assert.ok(r.raw.subarray(0, 2).equals(GZIP_MAGIC) && r.raw.length !== r.body.length, `${r.path}: the bytes on the wire are gzip`);
        }
      }
    });
  }

  it('control: without the client certificate the collector refuses the handshake; each signal says so once and nothing arrives', async () => {
    const requestsBefore = receiver.requests.length;
    const handshakesBefore = receiver.tlsErrors.length;
    const got = await runOnce('tls-no-client-cert', {
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_CERTIFICATE: files.ca,
    });
    assert.deepEqual({ code: got.exit.code, signal: got.exit.signal }, { code: 0, signal: null });
    assert.equal(receiver.requests.length, requestsBefore);
    assert.ok(receiver.tlsErrors.length > handshakesBefore, 'the receiver saw handshakes without a certificate');
    for (const signal of ['trace', 'metrics', 'logs']) {
      const warnings = got.cli.lines.filter((l) => l.includes(`${signal} export to https://127.0.0.1:${receiver.port}`));
      assert.equal(warnings.length, 1, `${signal}: ${got.cli.lines.join('\n')}`);
      // OpenSSL ends its alert text with a newline: the warning's reason is trimmed, its message one line
      const warning = JSON.parse(warnings[0]!) as { msg: string; reason: string };
      assert.ok(warning.reason.length > 0 && warning.reason === warning.reason.trim(), `${signal}: ${JSON.stringify(warning.reason)}`);
      assert.ok(!warning.msg.includes('\n'), `${signal}: ${JSON.stringify(warning.msg)}`);
    }
  });

  it('control: without OTEL_EXPORTER_OTLP_CERTIFICATE the collector (a private CA) is not trusted: nothing is sent', async () => {
    const requestsBefore = receiver.requests.length;
    const got = await runOnce('tls-no-ca', {
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: files.clientCert,
      OTEL_EXPORTER_OTLP_CLIENT_KEY: files.clientKey,
    });
    assert.deepEqual({ code: got.exit.code, signal: got.exit.signal }, { code: 0, signal: null });
    assert.equal(receiver.requests.length, requestsBefore);
    const warning = got.cli.lines.find((l) => l.includes('metrics export to'));
    assert.match(warning ?? '', /certificate/i, got.cli.lines.join('\n'));
  });
});
