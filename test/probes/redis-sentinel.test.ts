/**
 * redis with `sentinels`: against a real Sentinel set (a primary, its replica
 * and two Sentinels, all password-protected), the probe asks the Sentinels for
 * the master, probes that node and says which node answered (message and span
 * attributes); it follows the master through a SENTINEL FAILOVER and through
 * the death of the master, while probing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { CheckRunner } from '../../src/health/runner';
import { parseConfig } from '../../src/probes/registry';
import { startSentinelSet, withRedis, type SentinelSet } from '../helpers/private-datastores';
import { freePort, sleep, waitFor } from '../helpers/servers';
import { checkFromYaml, runnerFor } from './support';

const DATA_PW = 'CANARY-SENTINEL-DATA-PW-77e1';
const SENTINEL_PW = 'CANARY-SENTINEL-PW-4c2d';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

let set: SentinelSet;
const runners: CheckRunner[] = [];

function sentinelCheck(options: { sentinels?: string[]; masterName?: string; sentinelPassword?: string; extra?: string[] } = {}) {
  const lines = [
    'kind: redis',
    `url: redis://:${DATA_PW}@mymaster/0`,
    `sentinels: [${(options.sentinels ?? set.sentinelAddresses()).join(', ')}]`,
    `masterName: ${options.masterName ?? 'mymaster'}`,
    ...(options.sentinelPassword === '' ? [] : [`sentinelPassword: ${options.sentinelPassword ?? SENTINEL_PW}`]),
    ...(options.extra ?? []),
  ];
  const { check, redactor } = checkFromYaml(lines.join('\n    '), { timeout: '1s' });
  const runner = runnerFor(check, redactor);
  runners.push(runner);
  return runner;
}

const connectionsOf = (port: number) =>
  withRedis({ port, password: DATA_PW }, async (r) => String(await r.call('CLIENT', 'LIST')).split('\n').filter((line) => line.includes('name=otel-health-sidecar:probe-under-test')).length);

const success = (node: number, sentinel: number) =>
  `PONG from 127.0.0.1:${set.nodes[node]!.port}, master of mymaster per Sentinel 127.0.0.1:${set.sentinels[sentinel]!.port}, role master, `;

before(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  set = await startSentinelSet({ sentinels: 2, password: DATA_PW, sentinelPassword: SENTINEL_PW });
});

after(async () => {
  for (const r of runners.splice(0)) await r.close();
  await set?.stop();
  await provider.shutdown();
});

describe('redis probe through Sentinels', () => {
  test('asks the Sentinels, probes the master they name, and says which node answered (message and span)', async () => {
    exporter.reset();
    const result = await sentinelCheck().run('manual');
    assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message: `${success(0, 0)}1 connected replica(s)` });
    const attempt = exporter.getFinishedSpans().find((s) => s.name === 'healthcheck probe-under-test attempt');
    assert.ok(attempt, 'attempt span');
    assert.deepEqual([attempt.attributes['healthcheck.redis.node'], attempt.attributes['healthcheck.redis.sentinel']], [
      `127.0.0.1:${set.nodes[0]!.port}`,
      `127.0.0.1:${set.sentinels[0]!.port}`,
    ]);
  });

  test('a Sentinel that refuses is skipped: the next one answers', async () => {
    const closed = await freePort();
    const result = await sentinelCheck({ sentinels: [`127.0.0.1:${closed}`, ...set.sentinelAddresses()] }).run('manual');
    assert.equal(result.ok, true, result.message);
    assert.ok(result.message.startsWith(success(0, 0)), result.message);
  });

  test('wrong Sentinel password: no Sentinel named the master, each says why, no password in the message', async () => {
    const result = await sentinelCheck({ sentinelPassword: 'CANARY-WRONG-SENTINEL-PW-9d9d' }).run('manual');
    assert.equal(result.outcome, 'failure');
    const [s0, s1] = set.sentinelAddresses();
    assert.match(
      result.message,
      new RegExp(`^redis master mymaster \\(Sentinels ${s0}, ${s1}\\): no Sentinel named the master \\(${s0}: authentication failed \\(WRONGPASS[^;]*\\); ${s1}: authentication failed \\(WRONGPASS[^;]*\\)\\)$`),
    );
    for (const secret of ['CANARY-WRONG-SENTINEL-PW-9d9d', SENTINEL_PW, DATA_PW]) assert.ok(!result.message.includes(secret), result.message);
  });

  test('a master name the Sentinels do not monitor: failure naming it', async () => {
    const result = await sentinelCheck({ masterName: 'nosuchmaster' }).run('manual');
    assert.equal(result.outcome, 'failure');
    const [s0, s1] = set.sentinelAddresses();
    assert.equal(result.message, `redis master nosuchmaster (Sentinels ${s0}, ${s1}): no Sentinel named the master (${s0}: does not know master nosuchmaster; ${s1}: does not know master nosuchmaster)`);
  });

  test('follows a SENTINEL FAILOVER while probing, and then the death of the new master', async (t) => {
    for (const r of runners.splice(0)) await r.close(); // connections are counted by the check's name below
    const runner = sentinelCheck();
    const seen: { ok: boolean; message: string; phase: string }[] = [];
    let phase = 'before';
    let stop = false;
    // probe every 20 ms (a scheduler with a short interval) while the topology changes
    const loop = (async () => {
      while (!stop) {
        const result = await runner.run('manual');
        seen.push({ ok: result.ok, message: result.message, phase });
        await sleep(20);
      }
    })();
    try {
      await waitFor(() => seen.some((r) => r.ok), { what: 'a first successful run' });
      assert.equal(await connectionsOf(set.nodes[0]!.port), 1);

      const promoted = await set.failover();
      assert.equal(promoted, set.nodes[1]!.port);
      phase = 'after failover';
      const afterFailover = seen.length;
      await waitFor(() => seen.slice(afterFailover).some((r) => r.ok && r.message.includes(`PONG from 127.0.0.1:${promoted},`)), { what: 'a run on the new master', timeoutMs: 30_000 });
      // the old master still calls itself master for a while (until the Sentinel reconfigures it): the probe must not trust it
      const later = seen.slice(afterFailover);
      const firstOnNew = later.findIndex((r) => r.ok && r.message.includes(`127.0.0.1:${promoted},`));
      const strays = later.slice(firstOnNew).filter((r) => !r.ok || !r.message.includes(`127.0.0.1:${promoted}`));
      assert.equal(strays.length, 0, `every run after the move succeeds on the new master; ${strays.length} did not, first: ${strays[0]?.message}`);
      assert.equal(await connectionsOf(promoted), 1, 'the probe holds one connection, to the new master');
      assert.equal(await connectionsOf(set.nodes[0]!.port), 0, 'and none to the old one');

      phase = 'master killed';
      const beforeKill = seen.length;
      const survivor = await set.killMaster();
      assert.equal(survivor, set.nodes[0]!.port);
      await waitFor(() => seen.slice(beforeKill).some((r) => r.ok && r.message.includes(`PONG from 127.0.0.1:${survivor},`)), { what: 'a run on the promoted survivor', timeoutMs: 30_000 });
      const outage = seen.slice(beforeKill);
      const failures = outage.filter((r) => !r.ok);
      // between the kill and the promotion the Sentinels still name the dead master: those runs fail, naming it
      assert.ok(failures.length > 0, 'the dead master made runs fail');
      // a long outage may open the breaker: a rejected run names the same dead master as its last error
      const unexplained = failures.filter((f) => !new RegExp(`^(circuit breaker open; last error: )?redis 127\\.0\\.0\\.1:${promoted} \\(master of mymaster per Sentinel 127\\.0\\.0\\.1:\\d+\\): `).test(f.message));
      assert.equal(unexplained.length, 0, `every failure names the dead master; first other: ${unexplained[0]?.message}`);
      const recovered = outage.findIndex((r) => r.ok && r.message.includes(`PONG from 127.0.0.1:${survivor},`));
      const relapses = outage.slice(recovered).filter((r) => !r.ok || !r.message.includes(`127.0.0.1:${survivor}`));
      assert.equal(relapses.length, 0, `after the promotion every run succeeds on the survivor; ${relapses.length} did not, first: ${relapses[0]?.message}`);
    } finally {
      stop = true;
      await loop;
    }
    for (const r of seen) for (const secret of [SENTINEL_PW, DATA_PW]) assert.ok(!r.message.includes(secret), r.message);
    const tally = new Map<string, number>();
    for (const r of seen) tally.set(`${r.phase} ${r.ok ? 'ok' : 'failed'}`, (tally.get(`${r.phase} ${r.ok ? 'ok' : 'failed'}`) ?? 0) + 1);
    t.diagnostic(`runs: ${[...tally].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  });
});

test('the Sentinel password is a secret (redacted from every output)', () => {
  const config = parseConfig('checks:\n  - { name: c, kind: redis, url: "redis://m", sentinels: ["s:26379"], masterName: m, sentinelPassword: SENTINEL-SECRET-1 }\n', 'ok.yaml', { env: {} });
  assert.ok(config.secrets.includes('SENTINEL-SECRET-1'));
});
