/** Incidents computed from a driven sequence of results through a real HealthStore. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/probes/registry';
import { IncidentLog, type Incident } from '../../src/health/incidents';
import { HealthStore, type RunResult } from '../../src/health/state';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const at = (s: number) => T0 + s * 1000;

function result(ok: boolean, second: number, message = ok ? 'ok' : 'refused'): RunResult {
  return { ok, outcome: ok ? 'success' : 'failure', message, latencyMs: 5, attempts: 1, startedAt: at(second) - 5, finishedAt: at(second), breaker: 'closed' };
}

function setup(max = 10, now = () => at(1000)) {
  const cfg = parseConfig('checks:\n  - { name: db, kind: tcp, url: "tcp://127.0.0.1:5432", thresholds: { failure: 3, success: 2 } }\n  - { name: cache, kind: tcp, url: "tcp://127.0.0.1:6379" }\n', 't.yaml', { env: {} });
  const store = new HealthStore();
  for (const c of cfg.checks) store.upsert(c);
  const saved: Incident[][] = [];
  const log = new IncidentLog(max, (list) => saved.push(list.map((i) => ({ ...i }))), now);
  store.onRecord((name, run, state) => log.observeRun(name, run, state));
  store.onTransition((t) => log.observeTransition(t));
  return { store, log, saved };
}

describe('incidents', () => {
  test('opened after hysteresis, dated from the first failure, closed on recovery with the counts and errors', () => {
    const { store, log } = setup();
    store.record('db', result(true, 0));
    store.record('db', result(false, 10, 'refused #1')); // streak starts
    store.record('db', result(false, 20, 'refused #2'));
    assert.equal(log.list().length, 0, 'no incident before hysteresis says DOWN');
    store.record('db', result(false, 30, 'refused #3')); // → DOWN
    store.record('db', result(false, 40, 'timeout #4'));
    store.record('db', result(true, 50)); // 1 of 2 successes
    store.record('db', result(false, 60, 'reset #5')); // still DOWN, streak counts on
    store.record('db', result(true, 70));
    assert.equal(log.openFor('db')?.check, 'db');
    store.record('db', result(true, 80)); // → UP
    const [incident] = log.list();
    assert.match(incident!.id, /^inc-[0-9a-z]+-[0-9a-f]{6}$/);
    assert.deepEqual(log.toJson(incident!), {
      id: incident!.id,
      check: 'db',
      critical: true,
      open: false,
      start: new Date(at(10) - 5).toISOString(),
      detectedAt: new Date(at(30)).toISOString(),
      end: new Date(at(80)).toISOString(),
      durationMs: at(80) - (at(10) - 5),
      firstError: 'refused #1',
      lastError: 'reset #5',
      failedProbes: 5,
      closedBy: 'recovered',
    });
    assert.equal(log.openFor('db'), undefined);
  });

  test('failures that never reach DOWN open nothing; an open incident shows its running duration', () => {
    const { store, log } = setup(10, () => at(500));
    store.record('db', result(true, 0));
    store.record('db', result(false, 1));
    store.record('db', result(false, 2));
    store.record('db', result(true, 3));
    assert.equal(log.list().length, 0);
    store.record('cache', result(false, 100, 'first')); // UNKNOWN → DOWN on the first result
    const json = log.toJson(log.list()[0]!);
    assert.equal(json.open, true);
    assert.equal(json.end, null);
    assert.equal(json.durationMs, at(500) - (at(100) - 5));
    store.reset('cache');
    assert.equal(log.list()[0]!.closedBy, 'reset');
  });

  test('bounded: the oldest closed incidents are dropped first; an open one is kept', () => {
    const { store, log } = setup(3);
    store.record('cache', result(false, 0)); // stays open throughout
    let s = 1;
    for (let i = 0; i < 5; i++) {
      store.record('db', result(true, s++));
      store.record('db', result(false, s++, `outage ${i}`));
      store.record('db', result(false, s++, `outage ${i}`));
      store.record('db', result(false, s++, `outage ${i}`));
      store.record('db', result(true, s++));
      store.record('db', result(true, s++));
    }
    const list = log.list();
    assert.equal(list.length, 3);
    assert.deepEqual(list.map((i) => `${i.check}:${i.firstError}`), ['db:outage 4', 'db:outage 3', 'cache:refused']);
  });

  test('restored from persistence: an open incident is resumed (no second one) and closes on recovery', () => {
    const first = setup();
    first.store.record('db', result(false, 0, 'down before restart'));
    const persisted = first.saved.at(-1)!;
    assert.equal(persisted.length, 1);

    const second = setup();
    second.log.restore(JSON.parse(JSON.stringify(persisted)));
    second.store.record('db', result(false, 100, 'still down')); // UNKNOWN → DOWN again after the restart
    assert.equal(second.log.list().length, 1);
    assert.equal(second.log.list()[0]!.id, persisted[0]!.id);
    second.store.record('db', result(true, 110));
    second.store.record('db', result(true, 120));
    const closed = second.log.list()[0]!;
    assert.deepEqual({ id: closed.id, endedAt: closed.endedAt, closedBy: closed.closedBy, firstError: closed.firstError, lastError: closed.lastError, failedProbes: closed.failedProbes }, { id: persisted[0]!.id, endedAt: at(120), closedBy: 'recovered', firstError: 'down before restart', lastError: 'still down', failedProbes: 2 });
  });
});
