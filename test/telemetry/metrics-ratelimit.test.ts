/**
 * Issue 16.6: /metrics is a rate-limit class of its own. A real Prometheus
 * scrapes the compiled CLI every second from 127.0.0.1 while a loop from the
 * same address calls /health at twice the anonymous limit: the loop gets
 * 429s (the anonymous limit is really being hit), and not one scrape fails —
 * Prometheus' own `up` is 1 for every scrape in the window, and its target
 * shows no error. The status page's assets are not counted either.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/servers';
import { get } from '../helpers/http';
import { ensureBuilt } from '../helpers/paths';
import { PROMETHEUS, startCli, startScrapingPrometheus, type CliProcess, type ScrapingPrometheus } from './support';

/** anonymous limit: 10 per 5 s = 2/s; the loop runs at 4/s */
const ANON = { limit: 10, windowMs: 5000 };

function getStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

describe('/metrics has its own rate-limit class', () => {
  let cli: CliProcess | undefined;
  let prometheus: ScrapingPrometheus | undefined;

  before(async () => {
    assert.ok(existsSync(PROMETHEUS), `${PROMETHEUS} is missing: install the Debian package "prometheus"; this test does not skip`);
    ensureBuilt();
    cli = await startCli(
      `
server: { port: 0, host: 127.0.0.1, drainDelay: 0s, auth: { anonymousRateLimit: ${ANON.limit}/5s } }
log: { level: info }
telemetry: { traces: { enabled: false } }
checks: [ { name: self, kind: tcp, url: "tcp://127.0.0.1:9", interval: 1h } ]
`,
      {},
    );
  });
  after(async () => {
    await prometheus?.stop();
    await cli?.stop();
  });

  it('a Prometheus scraping every second gets no 429 while /health from the same address is limited', async () => {
    const port = cli!.port;
    const statuses: number[] = [];
    let looping = true;
    const loop = (async () => {
      const periodMs = ANON.windowMs / ANON.limit / 2; // 2× the anonymous limit
      while (looping) {
        statuses.push(await getStatus(port, '/health'));
        await new Promise((r) => setTimeout(r, periodMs));
      }
    })();
    try {
      prometheus = await startScrapingPrometheus(port);
      const query = async (expr: string) => {
        const body = (await (await fetch(`http://127.0.0.1:${prometheus!.port}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as { data: { result: { value: [number, string] }[] } };
        return body.data.result.map((r) => Number(r.value[1]));
      };
      // at least 15 scrapes in the last minute, and the loop refused meanwhile
      await waitFor(
        async () => {
          if (prometheus!.exitCode() !== null) throw new Error(`prometheus exited: ${prometheus!.log()}`);
          const [count] = await query('count_over_time(up{job="health-sidecar"}[1m])');
          return (count ?? 0) >= 15 && statuses.filter((s) => s === 429).length >= 10;
        },
        { timeoutMs: 90_000, intervalMs: 500, what: '15 scrapes while /health is being limited' },
      );
      looping = false;
      await loop;
      assert.ok(statuses.includes(429), 'the anonymous limit was hit by the /health loop');
      assert.deepEqual(await query('min_over_time(up{job="health-sidecar"}[1m])'), [1], 'no scrape failed (a 429 makes up 0)');
      const targets = (await (await fetch(`http://127.0.0.1:${prometheus!.port}/api/v1/targets`)).json()) as { data: { activeTargets: { health: string; lastError: string }[] } };
      assert.deepEqual(targets.data.activeTargets.map((t) => [t.health, t.lastError]), [['up', '']]);
      // the status page's assets are not counted: three times the anonymous quota in a row, all served
      for (let i = 0; i < 3 * ANON.limit; i++) assert.equal((await get(port, i % 2 ? '/status/app.css' : '/status/app.js')).status, 200);
    } finally {
      looping = false;
      await loop;
    }
  });
});
