/**
 * The grpc probe against a real gRPC server (grpc-js + grpc-health-check's
 * HealthImplementation) started here, directly and behind the TCP fault proxy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { parseConfig } from '../../src/probes/registry';
import type { CheckRunner } from '../../src/health/runner';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { waitFor } from '../helpers/servers';
import { checkFromYaml, recovers, runnerFor, type CheckOptions } from './support';

export interface GrpcTestServer {
  port: number;
  health: HealthImplementation;
  close(): Promise<void>;
}

/** A grpc-js server with the standard health service on 127.0.0.1:0. */
export async function startGrpcHealthServer(
  statuses: Record<string, 'SERVING' | 'NOT_SERVING' | 'UNKNOWN'>,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
  withHealth = true,
): Promise<GrpcTestServer> {
  const server = new grpc.Server();
  const health = new HealthImplementation(statuses);
  if (withHealth) health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, bound) => (err ? reject(err) : resolve(bound))));
  return {
    port,
    health,
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

describe('grpc probe against a real grpc.health.v1 server', () => {
  let server: GrpcTestServer;
  let bare: GrpcTestServer;
  let proxy: FaultProxy;
  const runners: CheckRunner[] = [];

  function runner(url: string, service?: string, options: CheckOptions = {}) {
    const { check, redactor } = checkFromYaml(`kind: grpc\n    url: ${url}${service !== undefined ? `\n    service: ${JSON.stringify(service)}` : ''}`, options);
    const r = runnerFor(check, redactor);
    runners.push(r);
    return { check, runner: r };
  }

  before(async () => {
    server = await startGrpcHealthServer({ '': 'SERVING', payments: 'SERVING', ledger: 'NOT_SERVING' });
    bare = await startGrpcHealthServer({}, undefined, false);
    proxy = await startFaultProxy({ host: '127.0.0.1', port: server.port });
  });

  after(async () => {
    for (const r of runners) await r.close();
    await proxy?.close();
    await server?.close();
    await bare?.close();
  });

  test('SERVING: success for the whole server and for a named service, with the whole message', async () => {
    const whole = await runner(`grpc://127.0.0.1:${server.port}`).runner.run('manual');
    assert.deepEqual({ ok: whole.ok, outcome: whole.outcome, message: whole.message }, { ok: true, outcome: 'success', message: `grpc 127.0.0.1:${server.port}: SERVING` });
    const named = await runner(`grpc://127.0.0.1:${server.port}`, 'payments').runner.run('manual');
    assert.deepEqual({ ok: named.ok, outcome: named.outcome, message: named.message }, { ok: true, outcome: 'success', message: `grpc 127.0.0.1:${server.port} service "payments": SERVING` });
  });

  test('NOT_SERVING is a failure naming the status; the same probe succeeds once the service serves again', async () => {
    const { runner: r } = runner(`grpc://127.0.0.1:${server.port}`, 'ledger');
    const down = await r.run('manual');
    assert.deepEqual({ ok: down.ok, outcome: down.outcome, message: down.message }, { ok: false, outcome: 'failure', message: `grpc 127.0.0.1:${server.port} service "ledger": NOT_SERVING` });
    server.health.setStatus('ledger', 'SERVING');
    try {
      const up = await r.run('manual');
      assert.deepEqual({ ok: up.ok, message: up.message }, { ok: true, message: `grpc 127.0.0.1:${server.port} service "ledger": SERVING` });
    } finally {
      server.health.setStatus('ledger', 'NOT_SERVING');
    }
  });

  test('unknown service: failure with NOT_FOUND and the server\'s details', async () => {
    const result = await runner(`grpc://127.0.0.1:${server.port}`, 'nope').runner.run('manual');
    assert.deepEqual(
      { ok: result.ok, outcome: result.outcome, message: result.message },
      { ok: false, outcome: 'failure', message: `grpc 127.0.0.1:${server.port} service "nope": NOT_FOUND (Health status unknown for service nope)` },
    );
  });

  test('a server without the health service: failure with UNIMPLEMENTED', async () => {
    const result = await runner(`grpc://127.0.0.1:${bare.port}`).runner.run('manual');
    assert.equal(result.outcome, 'failure');
    assert.match(result.message, new RegExp(`^grpc 127\\.0\\.0\\.1:${bare.port}: UNIMPLEMENTED \\(`));
  });

  test('the channel is reused between runs: 5 runs, one TCP connection at the proxy', async () => {
    proxy.setMode('pass');
    proxy.dropAll();
    await waitFor(() => proxy.openConnections === 0, { what: 'proxy idle' });
    const acceptedBefore = proxy.acceptedConnections;
    const { runner: r } = runner(`grpc://127.0.0.1:${proxy.port}`);
    for (let i = 0; i < 5; i++) assert.equal((await r.run('manual')).outcome, 'success');
    assert.equal(proxy.acceptedConnections - acceptedBefore, 1);
    assert.equal(proxy.openConnections, 1);
  });

  test('refused port: failure with UNAVAILABLE; recovery as soon as the port accepts again', async () => {
    proxy.setMode('pass');
    const { runner: r } = runner(`grpc://127.0.0.1:${proxy.port}`);
    await recovers(r);
    proxy.setMode('refuse');
    await proxy.ready();
    try {
      const result = await r.run('manual');
      assert.equal(result.outcome, 'failure');
      assert.ok(result.message.startsWith(`grpc 127.0.0.1:${proxy.port}: UNAVAILABLE: `), result.message);
      const fresh = await runner(`grpc://127.0.0.1:${proxy.port}`).runner.run('manual');
      assert.equal(fresh.outcome, 'failure');
      assert.match(fresh.message, /ECONNREFUSED|connection refused|No connection established/i);
    } finally {
      proxy.setMode('pass');
      await proxy.ready();
    }
    // the failed channel was dropped, so the next run connects at once (no reconnect backoff)
    const recovered = await r.run('manual');
    assert.equal(recovered.outcome, 'success', recovered.message);
  });

  test('black hole: outcome timeout within the config budget, the channel is recreated, then recovery', async () => {
    proxy.setMode('pass');
    const { check, runner: r } = runner(`grpc://127.0.0.1:${proxy.port}`, undefined, { timeout: '200ms', attempts: 2, backoffInitial: '50ms', backoffMax: '100ms' });
    await recovers(r);
    const acceptedBefore = proxy.acceptedConnections;
    proxy.setMode('blackhole');
    try {
      const started = performance.now();
      const result = await r.run('manual');
      const elapsed = performance.now() - started;
      assert.deepEqual(
        { ok: result.ok, outcome: result.outcome, message: result.message, attempts: result.attempts },
        { ok: false, outcome: 'timeout', message: `timed out after ${check.timeout}ms`, attempts: 2 },
      );
      // a lower bound only: the black hole never answers, so the outcome says the timeout ended both attempts
      assert.ok(elapsed >= check.timeout * 2 * 0.95, `run took ${elapsed}ms, less than two timeouts`);
    } finally {
      proxy.setMode('pass');
    }
    await recovers(r);
    // the second attempt and the recovery each opened a new connection: the timed-out channel was not reused
    assert.ok(proxy.acceptedConnections - acceptedBefore >= 2, `accepted ${proxy.acceptedConnections - acceptedBefore} new connections`);
  });

  test('black hole: 20 timed-out runs do not pile up connections', async () => {
    proxy.setMode('pass');
    proxy.dropAll();
    await waitFor(() => proxy.openConnections === 0, { what: 'proxy idle' });
    const { runner: r } = runner(`grpc://127.0.0.1:${proxy.port}`, undefined, { timeout: '100ms' });
    proxy.setMode('blackhole');
    const openSeen: number[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const result = await r.run('manual');
        assert.equal(result.outcome, 'timeout', `run ${i}: ${result.message}`);
        openSeen.push(proxy.openConnections);
      }
    } finally {
      proxy.setMode('pass');
    }
    // (the probe closes a timed-out channel when it recreates it for the next run, so the count is sampled after each run)
    assert.ok(Math.max(...openSeen) <= 2, `open connections at the proxy grew: ${openSeen.join(',')}`);
    await waitFor(() => proxy.openConnections === 0, { what: 'every black-holed connection closed', timeoutMs: 30_000 });
    await recovers(r);
  });

  test('config: a grpcs:// URL without a port is valid, the service defaults to the whole server (""); the invalid grpc configs are fixtures (test/fixtures/config/invalid-grpc-*.yaml)', () => {
    const ok = parseConfig('checks:\n  - name: d\n    kind: grpc\n    url: grpcs://api.internal\n', 'ok.yaml', { env: {} }).checks[0];
    assert.deepEqual(ok && { kind: ok.kind, service: 'service' in ok ? ok.service : undefined }, { kind: 'grpc', service: '' });
  });
});
