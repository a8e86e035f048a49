/**
 * The dns probe against a real DNS server (dns2) on loopback UDP, started here:
 * every record type, expected answers, NXDOMAIN/NODATA/SERVFAIL, a silent
 * resolver (timeout), a dead port (refused) and failover between resolvers.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import type { CheckRunner } from '../../src/health/runner';
import { evaluateAnswers, normalizeAnswer } from '../../src/probes/dns';
import { checkFromYaml, runnerFor, type CheckOptions } from './support';

import { Packet, startDnsServer, type Zone } from '../helpers/dns-server';

/** A UDP port with nothing listening (bound, then closed): the kernel answers ICMP port unreachable. */
async function deadUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

const ZONE: Zone = {
  'api.test.example A': { records: [{ address: '10.0.0.5' }, { address: '10.0.0.6' }] },
  'api.test.example AAAA': { records: [{ address: '2001:db8::1' }] },
  'www.test.example CNAME': { records: [{ domain: 'api.test.example' }] },
  '_sip._udp.test.example SRV': { records: [{ priority: 10, weight: 60, port: 5060, target: 'sip.test.example' }] },
  'txt.test.example TXT': { records: [{ data: 'v=spf1 -all' }, { data: ['part one, ', 'part two'] }] },
  'broken.test.example': { rcode: 2 }, // SERVFAIL
  'slow.test.example': { silent: true },
};

describe('dns probe against a real DNS server on loopback', () => {
  let server: Awaited<ReturnType<typeof startDnsServer>>;
  const runners: CheckRunner[] = [];

  function run(lines: string[], options: CheckOptions = {}) {
    const { check, redactor } = checkFromYaml(['kind: dns', ...lines].join('\n    '), options);
    const r = runnerFor(check, redactor);
    runners.push(r);
    return { check, runner: r };
  }
  const at = () => `resolver: 127.0.0.1:${server.port}`;
  const where = (type: string, host: string) => `dns ${type} ${host} @127.0.0.1:${server.port}`;

  before(async () => {
    server = await startDnsServer(ZONE);
  });

  after(async () => {
    for (const r of runners) await r.close();
    await server?.close();
  });

  test('A: success lists the answers, and the query reached our server (not the system resolver)', async () => {
    const before = server.queries.length;
    const result = await run(['host: api.test.example', at()]).runner.run('manual');
    assert.deepEqual(
      { ok: result.ok, outcome: result.outcome, message: result.message },
      { ok: true, outcome: 'success', message: `${where('A', 'api.test.example')}: 10.0.0.5, 10.0.0.6` },
    );
    assert.deepEqual(server.queries.slice(before), ['api.test.example A']);
  });

  test('expected answers: a subset passes; a missing one fails and names it', async () => {
    const ok = await run(['host: api.test.example', at(), 'expect: { answers: [10.0.0.6] }']).runner.run('manual');
    assert.equal(ok.ok, true, ok.message);
    const missing = await run(['host: api.test.example', at(), 'expect: { answers: [10.0.0.6, 10.0.0.9] }']).runner.run('manual');
    assert.deepEqual(
      { ok: missing.ok, outcome: missing.outcome, message: missing.message },
      { ok: false, outcome: 'failure', message: `${where('A', 'api.test.example')}: missing expected 10.0.0.9; got 10.0.0.5, 10.0.0.6` },
    );
  });

  test('AAAA, CNAME, SRV and TXT, with expected answers written differently from the wire form', async () => {
    const cases: [string[], string][] = [
      [['host: api.test.example', 'recordType: AAAA', 'expect: { answers: ["2001:DB8:0:0::1"] }'], `${where('AAAA', 'api.test.example')}: 2001:db8::1`],
      [['host: www.test.example', 'recordType: CNAME', 'expect: { answers: [API.test.example.] }'], `${where('CNAME', 'www.test.example')}: api.test.example`],
      [['host: _sip._udp.test.example', 'recordType: SRV', 'expect: { answers: ["10 60 5060 sip.test.example"] }'], `${where('SRV', '_sip._udp.test.example')}: 10 60 5060 sip.test.example`],
      [['host: txt.test.example', 'recordType: TXT', 'expect: { answers: ["part one, part two"] }'], `${where('TXT', 'txt.test.example')}: "v=spf1 -all", "part one, part two"`],
    ];
    for (const [lines, message] of cases) {
      const result = await run([...lines, at()]).runner.run('manual');
      assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message });
    }
  });

  test('NXDOMAIN, NODATA and SERVFAIL are failures that say which', async () => {
    const cases: [string[], string][] = [
      [['host: nope.test.example'], `${where('A', 'nope.test.example')}: NXDOMAIN (no such name)`],
      [['host: www.test.example', 'recordType: A'], `${where('A', 'www.test.example')}: no records of this type (NODATA)`],
      [['host: broken.test.example'], `${where('A', 'broken.test.example')}: SERVFAIL (the resolver could not answer)`],
    ];
    for (const [lines, message] of cases) {
      const result = await run([...lines, at()]).runner.run('manual');
      assert.deepEqual({ ok: result.ok, outcome: result.outcome, message: result.message }, { ok: false, outcome: 'failure', message });
    }
  });

  test('a resolver that never answers: outcome timeout within the config budget', async () => {
    const { check, runner: r } = run(['host: slow.test.example', at()], { timeout: '200ms', attempts: 2, backoffInitial: '50ms', backoffMax: '100ms' });
    const started = performance.now();
    const result = await r.run('manual');
    const elapsed = performance.now() - started;
    assert.deepEqual(
      { ok: result.ok, outcome: result.outcome, message: result.message, attempts: result.attempts },
      { ok: false, outcome: 'timeout', message: `timed out after ${check.timeout}ms`, attempts: 2 },
    );
    // a lower bound only: the resolver never answers, so the outcome says the timeout ended both attempts
    assert.ok(elapsed >= check.timeout * 2 * 0.95, `run took ${elapsed}ms, less than two timeouts`);
  });

  test('a dead resolver port is a failure; with a second resolver configured the query fails over to it', async () => {
    const dead = await deadUdpPort();
    const alone = await run(['host: api.test.example', `resolver: 127.0.0.1:${dead}`]).runner.run('manual');
    assert.equal(alone.outcome, 'failure');
    assert.ok(alone.message.startsWith(`dns A api.test.example @127.0.0.1:${dead}: `), alone.message);
    assert.equal(alone.message, `dns A api.test.example @127.0.0.1:${dead}: connection refused by the resolver (ECONNREFUSED)`);

    const both = await run(['host: api.test.example', `resolver: [127.0.0.1:${dead}, 127.0.0.1:${server.port}]`], { timeout: '2s' }).runner.run('manual');
    assert.deepEqual(
      { ok: both.ok, message: both.message },
      { ok: true, message: `dns A api.test.example @127.0.0.1:${dead},127.0.0.1:${server.port}: 10.0.0.5, 10.0.0.6` },
    );
  });

  test('answer comparison (pure): case, trailing dots and IPv6 spelling do not matter; more answers are fine', () => {
    assert.equal(normalizeAnswer('AAAA', '2001:0DB8:0000::0001'), '2001:db8::1');
    assert.equal(normalizeAnswer('CNAME', 'Api.Example.COM.'), 'api.example.com');
    assert.equal(normalizeAnswer('TXT', 'Case Kept'), 'Case Kept');
    assert.deepEqual(evaluateAnswers('A', ['10.0.0.1', '10.0.0.2'], ['10.0.0.2']), { ok: true, missing: [] });
    assert.deepEqual(evaluateAnswers('A', ['10.0.0.1'], ['10.0.0.2', '10.0.0.1']), { ok: false, missing: ['10.0.0.2'] });
    assert.deepEqual(evaluateAnswers('A', [], undefined), { ok: false, missing: [] });
  });
});
