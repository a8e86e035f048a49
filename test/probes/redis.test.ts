import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CheckRunner } from '../../src/health/runner';
import { Redactor } from '../../src/redact';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-services';
import { REDIS_URL } from '../helpers/servers';
import { describeFaultBehaviour } from './faults';
import { checkFromYaml, runnerFor } from './support';

const PASSWORD = 'CANARY-REDIS-PW-7f3a';
const WRONG_PASSWORD = 'CANARY-WRONG-PW-c0de';

let redis: PrivateRedis | undefined;

// The fault suite runs against a password-protected private redis-server, so every
// failure message it checks is also checked for the password.
describeFaultBehaviour({
  kind: 'redis',
  setup: async () => {
    redis = await startPrivateRedis(PASSWORD);
  },
  teardown: async () => {
    await redis?.stop();
    redis = undefined;
  },
  target: () => ({ host: '127.0.0.1', port: redis!.port }),
  url: (proxy) => proxy.url('redis', `:${PASSWORD}@`),
  successMessage: () => 'PONG',
  where: (proxy) => `redis 127.0.0.1:${proxy.port}`,
  secrets: [PASSWORD],
});

describe('redis probe: authentication', () => {
  const runners: CheckRunner[] = [];
  // No secrets given to the redactor: the probe's own messages must not carry passwords.
  const runner = (url: string) => {
    const r = runnerFor(checkFromYaml(`kind: redis\n    url: ${url}`).check, new Redactor());
    runners.push(r);
    return r;
  };

  before(async () => {
    redis = await startPrivateRedis(PASSWORD);
  });
  after(async () => {
    for (const r of runners) await r.close();
    await redis?.stop();
  });

  test('wrong password: failure says authentication failed and names neither password', async () => {
    const result = await runner(redis!.url(WRONG_PASSWORD)).run('manual');
    assert.equal(result.outcome, 'failure');
    assert.ok(result.message.startsWith(`redis 127.0.0.1:${redis!.port}: authentication failed (`), result.message);
    assert.ok(!result.message.includes(WRONG_PASSWORD), result.message);
    assert.ok(!result.message.includes(PASSWORD), result.message);
  });

  test('no password for a server that requires one: authentication failed (NOAUTH)', async () => {
    const result = await runner(`redis://127.0.0.1:${redis!.port}`).run('manual');
    assert.equal(result.outcome, 'failure');
    assert.match(result.message, new RegExp(`^redis 127\\.0\\.0\\.1:${redis!.port}: authentication failed \\(NOAUTH`));
  });

  test('right password: PONG, and the connection is kept for the next run', async () => {
    const r = runner(redis!.url(PASSWORD));
    for (let i = 0; i < 3; i++) {
      const result = await r.run('manual');
      assert.deepEqual({ ok: result.ok, outcome: result.outcome, message: result.message }, { ok: true, outcome: 'success', message: 'PONG' });
    }
  });

  test('the shared Redis (REDIS_URL) answers PONG', async () => {
    const result = await runner(REDIS_URL).run('manual');
    assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message: 'PONG' });
  });
});
