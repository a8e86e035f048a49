/**
 * /metrics with gzip, as Prometheus scrapes it (issue 21.8): a real
 * Prometheus scrapes the compiled CLI through a recording HTTP relay. The
 * relay passes requests and responses through byte for byte and notes the
 * Accept-Encoding Prometheus sent and the Content-Encoding the sidecar chose;
 * the samples Prometheus stored prove it decoded what it got.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/servers';
import { parsePrometheus, PROMETHEUS, startCli, startScrapingPrometheus, type CliProcess, type ScrapingPrometheus } from './support';
import { ensureBuilt } from '../helpers/paths';

interface Exchange {
  acceptEncoding: string | undefined;
  contentEncoding: string | undefined;
  status: number;
}

describe('/metrics gzip through a real Prometheus', () => {
  let cli: CliProcess | undefined;
  let prometheus: ScrapingPrometheus | undefined;
  let relay: http.Server | undefined;
  const exchanges: Exchange[] = [];

  async function query(expr: string): Promise<unknown[]> {
    const response = await fetch(`http://127.0.0.1:${prometheus!.port}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as { status: string; data: { result: unknown[] } };
    assert.equal(body.status, 'success');
    return body.data.result;
  }

  before(async () => {
    assert.ok(existsSync(PROMETHEUS), `${PROMETHEUS} is missing; this test does not skip`);
    ensureBuilt();
    cli = await startCli(
      `
server: { port: 0, host: 127.0.0.1, drainDelay: 0ms, auth: { anonymousRateLimit: 10000/1m } }
telemetry: { serviceName: gzip-test }
defaults: { interval: 1h, timeout: 1s, retry: { attempts: 1 } }
checks:
  - { name: self, kind: tcp, url: "tcp://127.0.0.1:1", critical: false }
`,
      {},
    );
    const target = cli.port;
    relay = http.createServer((req, res) => {
      const upstream = http.request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers, agent: false }, (answer) => {
        exchanges.push({ acceptEncoding: req.headers['accept-encoding'], contentEncoding: answer.headers['content-encoding'], status: answer.statusCode ?? 0 });
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => relay!.listen(0, '127.0.0.1', resolve));
    prometheus = await startScrapingPrometheus((relay.address() as { port: number }).port);
    await waitFor(
      async () => {
        if (prometheus!.exitCode() !== null) throw new Error(`prometheus exited: ${prometheus!.log()}`);
        return (await query('healthcheck_status{healthcheck_name="self"}')).length === 1;
      },
      { timeoutMs: 45_000, intervalMs: 250, what: 'Prometheus to store a sample of the sidecar' },
    );
  });

  after(async () => {
    await prometheus?.stop();
    await cli?.stop();
    await new Promise<void>((resolve) => (relay ? relay.close(() => resolve()) : resolve()));
  });

  it('Prometheus asks for gzip, the sidecar answers gzip, and Prometheus stores the samples', async () => {
    assert.ok(exchanges.length >= 1);
    for (const exchange of exchanges) {
      assert.match(exchange.acceptEncoding ?? '', /\bgzip\b/, 'Prometheus sends Accept-Encoding: gzip');
      assert.equal(exchange.contentEncoding, 'gzip');
      assert.equal(exchange.status, 200);
    }
    const up = (await query('up{job="health-sidecar"}')) as { value: [number, string] }[];
    assert.equal(up[0]?.value[1], '1');
  });

  it('a direct scrape: gzip inflates to the same families as the identity answer (OpenMetrics too)', async () => {
    const get = (accept: Record<string, string>) =>
      new Promise<{ headers: http.IncomingHttpHeaders; bytes: Buffer }>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: cli!.port, path: '/metrics', headers: accept, agent: false }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ headers: res.headers, bytes: Buffer.concat(chunks) }));
          })
          .on('error', reject);
      });
    const plain = await get({});
    const zipped = await get({ 'accept-encoding': 'gzip' });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.equal(zipped.headers.vary, 'Accept, Accept-Encoding');
    assert.deepEqual([...parsePrometheus(gunzipSync(zipped.bytes).toString('utf8')).keys()].sort(), [...parsePrometheus(plain.bytes.toString('utf8')).keys()].sort());
    const open = await get({ 'accept-encoding': 'gzip', accept: 'application/openmetrics-text; version=1.0.0' });
    assert.equal(open.headers['content-encoding'], 'gzip');
    assert.match(gunzipSync(open.bytes).toString('utf8'), /# EOF\n$/);
  });
});
