/**
 * Issue 14.5: telemetry.prometheus.requireKey. /metrics answers 401 without a
 * valid key (none, a wrong one, one without the Bearer scheme); a real
 * Prometheus configured with the key scrapes it (up == 1). A config asking for
 * it without any key is refused with FILE:LINE:COL.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../src/errors';
import { parseConfig } from '../../src/probes/registry';
import { Sidecar } from '../../src/sidecar';
import { createLogger } from '../../src/telemetry/log';
import { startTelemetry, type Telemetry } from '../../src/telemetry/sdk';
import { waitFor } from '../helpers/servers';
import { startScrapingPrometheus, type ScrapingPrometheus } from './support';

const KEY = 'metrics-scrape-key-0123456789abcdef';
let telemetry: Telemetry;
let sidecar: Sidecar;
let port: number;
let prometheus: ScrapingPrometheus | undefined;

function get(path: string, headers: Record<string, string> = {}, target = port): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: target, path, headers, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      })
      .on('error', reject);
  });
}

before(async () => {
  const config = parseConfig(
    `
server: { port: 0, host: 127.0.0.1, drainDelay: 0s, auth: { keys: [{ name: prometheus, key: "${KEY}" }] } }
telemetry: { serviceName: metrics-key-test, prometheus: { requireKey: true }, traces: { enabled: false } }
checks: []
`,
    'metrics-key.yaml',
    { env: {} },
  );
  const logger = createLogger({ level: 'warn', destination: { write: () => undefined } });
  telemetry = startTelemetry(config, logger, { env: {} });
  sidecar = new Sidecar(config, logger, telemetry.hooks);
  port = await sidecar.start();
});

after(async () => {
  await prometheus?.stop();
  await sidecar?.shutdown({ drain: false });
  await telemetry?.shutdown(2000);
});

describe('telemetry.prometheus.requireKey (issue 14.5)', () => {
  it('401 without a valid key, 200 with it', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-key-wrong-key-0000' }, { authorization: KEY }] as Record<string, string>[]) {
      const reply = await get('/metrics', headers);
      assert.equal(reply.status, 401, JSON.stringify(headers));
      assert.ok(!reply.body.includes('healthcheck_'), 'no metrics in a 401');
      assert.match(String(reply.headers['www-authenticate']), /^Bearer realm=/);
    }
    const ok = await get('/metrics', { authorization: `Bearer ${KEY}` });
    assert.equal(ok.status, 200);
    assert.match(ok.body, /target_info\{/);
    assert.equal((await get('/metrics', { 'x-api-key': KEY })).status, 200);
    // the kubelet paths stay open
    assert.equal((await get('/livez')).status, 200);
  });

  it('a real Prometheus with the key in its scrape config scrapes it (up == 1)', async () => {
    prometheus = await startScrapingPrometheus(port, [], { bearer: KEY });
    const p = prometheus;
    await waitFor(
      async () => {
        const reply = await get('/api/v1/query?query=up', {}, p.port).catch(() => undefined);
        const result = reply?.status === 200 ? (JSON.parse(reply.body) as { data: { result: { value: [number, string] }[] } }).data.result : [];
        return result.length === 1 && result[0]!.value[1] === '1';
      },
      { timeoutMs: 30_000, what: `Prometheus scraping /metrics with the key (log: ${p.log().slice(0, 300)})` },
    );
  });

  it('requireKey without any key is a config error at its position', () => {
    assert.throws(
      () => parseConfig('telemetry:\n  prometheus:\n    requireKey: true\n', 'nokeys.yaml', { env: {} }),
      (err: unknown) => err instanceof ConfigError && /nokeys\.yaml:3:\d+ telemetry\.prometheus\.requireKey: needs at least one key in server\.auth\.keys/.test(err.message),
    );
  });
});
