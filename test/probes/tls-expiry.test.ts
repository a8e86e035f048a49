/**
 * TLS certificate expiry on https http checks and grpcs grpc checks, against
 * real servers presenting certificates made here with openssl (1 day, 90 days,
 * and a 90-day leaf under a CA that expires in 10 days): tls.minValidity with
 * action fail and warn, the chain's earliest expiry, and the
 * healthcheck.tls.cert_expiry gauge through a real OTel MeterProvider.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { MeterProvider, MetricReader, type GaugeMetricData } from '@opentelemetry/sdk-metrics';
import { HealthImplementation } from 'grpc-health-check';
import type { CheckRunner } from '../../src/health/runner';
import { HealthSnapshots } from '../../src/health/snapshot';
import { HealthStore } from '../../src/health/state';
import { CertExpiryRegistry, certificateExpiry, describeRemaining, minValidityVerdict } from '../../src/probes/tls-expiry';
import { HealthMetrics } from '../../src/telemetry/metrics';
import { METRIC, SCOPE } from '../../src/telemetry/semconv';
import { DAY_MS, makeCa, makeServerCert, type Pem } from '../helpers/certs';
import { checkFromYaml, runnerFor } from './support';

class TestReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

interface Served {
  port: number;
  close(): Promise<void>;
}

async function httpsServer(leaf: Pem, chain: Pem[] = []): Promise<Served> {
  const server = https.createServer({ key: leaf.key, cert: [leaf.cert, ...chain.map((c) => c.cert)].join('') }, (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function grpcsServer(leaf: Pem): Promise<Served> {
  const server = new grpc.Server();
  new HealthImplementation({ '': 'SERVING' }).addToServer(server);
  const credentials = grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(leaf.key), cert_chain: Buffer.from(leaf.cert) }], false);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
  return { port, close: async () => server.forceShutdown() };
}

/** YAML block for a PEM string inside `tls:` (indented under the check). */
function pemYaml(key: string, pem: string): string {
  return `${key}: |\n${pem.trim().split('\n').map((line) => `        ${line}`).join('\n')}`;
}

const iso = (ms: number) => new Date(ms).toISOString();
const REMAINING = '(?:\\d+d \\d+h|\\d+h \\d+m|\\d+m)';
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('TLS certificate expiry (http https, grpc grpcs)', () => {
  let ca: Pem;
  let shortCa: Pem;
  let leaf1d: Pem;
  let leaf90d: Pem;
  let leafUnderShortCa: Pem;
  const servers: Served[] = [];
  const runners: CheckRunner[] = [];
  let short: Served;
  let long: Served;
  let chained: Served;
  let grpcShort: Served;
  let grpcLong: Served;

  /** the probes' registry (the Sidecar owns one and passes it in each probe's context) */
  const certs = new CertExpiryRegistry();

  function runner(yaml: string) {
    const { check, redactor } = checkFromYaml(yaml, { timeout: '2s' });
    const r = runnerFor(check, redactor, undefined, certs);
    runners.push(r);
    return { check, runner: r };
  }

  function httpsCheck(port: number, tls: string[] = [], trust: Pem = ca) {
    return runner([`kind: http`, `url: https://127.0.0.1:${port}/`, 'tls:', `  ${pemYaml('ca', trust.cert)}`, ...tls.map((l) => `  ${l}`)].join('\n    '));
  }

  function grpcsCheck(port: number, tls: string[] = []) {
    return runner([`kind: grpc`, `url: grpcs://127.0.0.1:${port}`, 'tls:', `  ${pemYaml('ca', ca.cert)}`, ...tls.map((l) => `  ${l}`)].join('\n    '));
  }

  before(async () => {
    ca = await makeCa(365);
    shortCa = await makeCa(10, 'Short CA');
    leaf1d = await makeServerCert(ca, 1);
    leaf90d = await makeServerCert(ca, 90);
    leafUnderShortCa = await makeServerCert(shortCa, 90);
    short = await httpsServer(leaf1d);
    long = await httpsServer(leaf90d);
    chained = await httpsServer(leafUnderShortCa);
    grpcShort = await grpcsServer(leaf1d);
    grpcLong = await grpcsServer(leaf90d);
    servers.push(short, long, chained, grpcShort, grpcLong);
  });

  after(async () => {
    for (const r of runners) await r.close();
    for (const s of servers) await s.close();
  });

  test('the generated certificates expire when asked (sanity of the fixtures)', () => {
    const now = Date.now();
    for (const [pem, days] of [[leaf1d, 1], [leaf90d, 90], [shortCa, 10]] as const) {
      const remaining = pem.notAfter - now;
      assert.ok(remaining > (days - 0.1) * DAY_MS && remaining <= days * DAY_MS + 60_000, `${pem.subject}: ${remaining}ms left, wanted ~${days}d`);
    }
  });

  test('https, minValidity 14d: the 90-day certificate passes, the 1-day one fails and says when it expires', async () => {
    const ok = await httpsCheck(long.port, ['minValidity: 14d']).runner.run('manual');
    assert.deepEqual({ ok: ok.ok, message: ok.message }, { ok: true, message: `GET https://127.0.0.1:${long.port}/: status 200` });
    const failing = await httpsCheck(short.port, ['minValidity: 14d']).runner.run('manual');
    assert.equal(failing.ok, false);
    assert.equal(failing.outcome, 'failure');
    assert.match(
      failing.message,
      new RegExp(`^${esc(`GET https://127.0.0.1:${short.port}/: status 200, but certificate expires in `)}2[23]h \\d+m ${esc(`(notAfter ${iso(leaf1d.notAfter)}), less than tls.minValidity 14d`)}$`),
    );
  });

  test('https, minValidityAction warn: the 1-day certificate passes with a warning', async () => {
    const result = await httpsCheck(short.port, ['minValidity: 14d', 'minValidityAction: warn']).runner.run('manual');
    assert.equal(result.ok, true);
    assert.match(
      result.message,
      new RegExp(`^${esc(`GET https://127.0.0.1:${short.port}/: status 200; warning: certificate expires in `)}2[23]h \\d+m ${esc(`(notAfter ${iso(leaf1d.notAfter)})`)}`),
    );
  });

  test('https without minValidity: no verdict, and a 1-day certificate is fine', async () => {
    const result = await httpsCheck(short.port).runner.run('manual');
    assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message: `GET https://127.0.0.1:${short.port}/: status 200` });
  });

  test('the earliest expiry in the chain counts: a 90-day leaf under a CA that expires in 10 days fails minValidity 14d', async () => {
    const result = await httpsCheck(chained.port, ['minValidity: 14d'], shortCa).runner.run('manual');
    assert.equal(result.ok, false);
    assert.match(
      result.message,
      new RegExp(`^${esc(`GET https://127.0.0.1:${chained.port}/: status 200, but chain certificate CN=Short CA expires in `)}(?:9d|10d) \\d+h ${esc(`(notAfter ${iso(shortCa.notAfter)}), less than tls.minValidity 14d`)}$`),
    );
    const passes = await httpsCheck(chained.port, ['minValidity: 7d'], shortCa).runner.run('manual');
    assert.equal(passes.ok, true, passes.message);
  });

  test('grpcs: SERVING with the 90-day certificate; the 1-day one fails (action fail) or warns (action warn) under minValidity 14d', async () => {
    const ok = await grpcsCheck(grpcLong.port, ['minValidity: 14d']).runner.run('manual');
    assert.deepEqual({ ok: ok.ok, message: ok.message }, { ok: true, message: `grpc 127.0.0.1:${grpcLong.port}: SERVING` });
    const failing = await grpcsCheck(grpcShort.port, ['minValidity: 14d']).runner.run('manual');
    assert.equal(failing.ok, false);
    assert.match(
      failing.message,
      new RegExp(`^${esc(`grpc 127.0.0.1:${grpcShort.port}: SERVING, but certificate expires in `)}2[23]h \\d+m ${esc(`(notAfter ${iso(leaf1d.notAfter)}), less than tls.minValidity 14d`)}$`),
    );
    const warned = await grpcsCheck(grpcShort.port, ['minValidity: 14d', 'minValidityAction: warn']).runner.run('manual');
    assert.equal(warned.ok, true);
    assert.ok(warned.message.startsWith(`grpc 127.0.0.1:${grpcShort.port}: SERVING; warning: certificate expires in `), warned.message);
  });

  test('grpcs with a certificate the client does not trust: failure naming the TLS problem', async () => {
    const result = await runner(`kind: grpc\n    url: grpcs://127.0.0.1:${grpcLong.port}`).runner.run('manual');
    assert.equal(result.outcome, 'failure');
    assert.ok(result.message.startsWith(`grpc 127.0.0.1:${grpcLong.port}: UNAVAILABLE: `), result.message);
    assert.match(result.message, /certificate/i);
  });

  test('gauge healthcheck.tls.cert_expiry: leaf and earliest notAfter in unix seconds per check, through a real MeterProvider; gone when the check closes', async () => {
    const reader = new TestReader();
    // the gauge is made by the telemetry's HealthMetrics from its Meter and reads the registry the probes record in
    const provider = new MeterProvider({ readers: [reader] });
    const store = new HealthStore();
    const stopObserving = new HealthMetrics(provider.getMeter(SCOPE)).observe({ store, health: new HealthSnapshots(store), certExpiry: certs });
    const { check: leafCheck, runner: a } = runner(
      ['kind: http', `url: https://127.0.0.1:${chained.port}/`, 'tls:', `  ${pemYaml('ca', shortCa.cert)}`].join('\n    '),
    );
    const { runner: b } = runner(['kind: grpc', `url: grpcs://127.0.0.1:${grpcLong.port}`, 'tls:', `  ${pemYaml('ca', ca.cert)}`].join('\n    '));
    // names are per test config ("probe-under-test"); two checks with one name would overwrite each other, so run and read one at a time
    assert.equal((await a.run('manual')).ok, true);
    const collected = await reader.collect();
    const metric = collected.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === METRIC.certExpiry) as GaugeMetricData | undefined;
    assert.ok(metric, `${METRIC.certExpiry} exported`);
    assert.equal(metric.descriptor.unit, 's');
    assert.deepEqual(
      metric.dataPoints.map((p) => ({ value: p.value, attributes: p.attributes })),
      [
        { value: Math.floor(leafUnderShortCa.notAfter / 1000), attributes: { 'healthcheck.name': leafCheck.name, 'healthcheck.kind': 'http', 'healthcheck.tls.cert': 'leaf' } },
        { value: Math.floor(shortCa.notAfter / 1000), attributes: { 'healthcheck.name': leafCheck.name, 'healthcheck.kind': 'http', 'healthcheck.tls.cert': 'earliest' } },
      ],
    );
    await a.close();
    assert.deepEqual(certs.observations(), [], 'closing the probe removes its series');
    assert.equal((await b.run('manual')).ok, true);
    assert.deepEqual(certs.observations(), [
      { value: Math.floor(leaf90d.notAfter / 1000), attributes: { 'healthcheck.name': leafCheck.name, 'healthcheck.kind': 'grpc', 'healthcheck.tls.cert': 'leaf' } },
      // the CA (365 days) outlives the leaf (90 days): the leaf is the earliest
      { value: Math.floor(leaf90d.notAfter / 1000), attributes: { 'healthcheck.name': leafCheck.name, 'healthcheck.kind': 'grpc', 'healthcheck.tls.cert': 'earliest' } },
    ]);
    await b.close();
    assert.deepEqual(certs.observations(), []);
    stopObserving();
    await provider.shutdown();
  });

  test('pure helpers: chain walk stops at a self-signed root; verdicts and wording', () => {
    const root: { valid_to: string; subject: { CN: string }; fingerprint256: string; issuerCertificate?: unknown } = {
      valid_to: 'Jan 10 00:00:00 2030 GMT',
      subject: { CN: 'Root' },
      fingerprint256: 'R',
    };
    root.issuerCertificate = root;
    const leaf = { valid_to: 'Mar  1 00:00:00 2031 GMT', subject: { CN: 'leaf' }, fingerprint256: 'L', issuerCertificate: root };
    const expiry = certificateExpiry(leaf as never);
    assert.deepEqual(expiry, { leafNotAfter: Date.UTC(2031, 2, 1), earliestNotAfter: Date.UTC(2030, 0, 10), earliestSubject: 'CN=Root', chainLength: 2 });
    assert.equal(certificateExpiry({} as never), undefined);
    const now = Date.UTC(2030, 0, 1);
    assert.deepEqual(minValidityVerdict(expiry, { minValidity: 7 * DAY_MS }, now), { state: 'ok' });
    assert.deepEqual(minValidityVerdict(expiry, {}, now), { state: 'ok' });
    assert.deepEqual(minValidityVerdict(expiry, { minValidity: 14 * DAY_MS, minValidityAction: 'fail' }, now), {
      state: 'fail',
      message: 'chain certificate CN=Root expires in 9d 0h (notAfter 2030-01-10T00:00:00.000Z), less than tls.minValidity 14d',
    });
    assert.deepEqual(minValidityVerdict(expiry, { minValidity: 14 * DAY_MS, minValidityAction: 'warn' }, Date.UTC(2030, 0, 11)), {
      state: 'warn',
      message: 'warning: chain certificate CN=Root expired 1d 0h ago (notAfter 2030-01-10T00:00:00.000Z), tls.minValidity is 14d',
    });
    assert.deepEqual(minValidityVerdict(undefined, { minValidity: DAY_MS }), { state: 'fail', message: 'no server certificate seen, cannot check tls.minValidity' });
    assert.equal(describeRemaining(90 * 60_000), '1h 30m');
    assert.equal(describeRemaining(59_000), '0m');
  });
});
