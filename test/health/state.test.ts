/**
 * Hysteresis of one check's state (applyRun, a pure function) driven by
 * tables of run sequences, plus the HealthStore around it (versions,
 * generation, transitions).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyRun, HealthStore, initialState, type CheckState, type CheckStatus, type Outcome, type RunResult, type Thresholds, type Transition } from '../../src/health/state';
import type { CheckConfig } from '../../src/config/types';
import { parseConfig } from '../../src/probes/registry';

/** One step of a table: the outcome of a run (S success, F failure, T timeout, R rejected). */
type Step = 'S' | 'F' | 'T' | 'R';
const OUTCOME: Record<Step, Outcome> = { S: 'success', F: 'failure', T: 'timeout', R: 'rejected' };

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

/** The i-th run of a sequence: finishes at T0 + i s, latency 10 + i ms. */
function run(step: Step, i: number): RunResult {
  const ok = step === 'S';
  return {
    ok,
    outcome: OUTCOME[step],
    message: ok ? `ok #${i}` : `${OUTCOME[step]} #${i}`,
    latencyMs: step === 'R' ? 0 : 10 + i,
    attempts: step === 'R' ? 0 : 1,
    startedAt: T0 + i * 1000 - 5,
    finishedAt: T0 + i * 1000,
    breaker: step === 'R' ? 'open' : 'closed',
  };
}

const base = () => initialState({ name: 'db', kind: 'postgres', critical: true, groups: ['ready'] });

/** Feed a sequence and return every intermediate state. */
function play(steps: string, thresholds: Thresholds): CheckState[] {
  const states: CheckState[] = [];
  let state = base();
  [...steps].forEach((step, i) => {
    state = applyRun(state, run(step as Step, i), thresholds);
    states.push(state);
  });
  return states;
}

interface Row {
  name: string;
  thresholds: Thresholds;
  steps: string;
  /** status after each step: U = UP, D = DOWN */
  statuses: string;
  /** version after each step */
  versions: number[];
}

const TABLE: Row[] = [
  { name: 'first success decides UP at once', thresholds: { failure: 3, success: 2 }, steps: 'S', statuses: 'U', versions: [1] },
  { name: 'first failure decides DOWN at once', thresholds: { failure: 3, success: 2 }, steps: 'F', statuses: 'D', versions: [1] },
  { name: 'first timeout decides DOWN at once', thresholds: { failure: 3, success: 1 }, steps: 'T', statuses: 'D', versions: [1] },
  { name: 'first rejection decides DOWN at once', thresholds: { failure: 3, success: 1 }, steps: 'R', statuses: 'D', versions: [1] },
  { name: 'UP stays UP for failure-1 failures, flips on the failure-th', thresholds: { failure: 3, success: 1 }, steps: 'SFFF', statuses: 'UUUD', versions: [1, 1, 1, 2] },
  { name: 'failure threshold 1 flips on the first failure', thresholds: { failure: 1, success: 1 }, steps: 'SF', statuses: 'UD', versions: [1, 2] },
  { name: 'a success in between restarts the failure count', thresholds: { failure: 3, success: 1 }, steps: 'SFFSFFF', statuses: 'UUUUUUD', versions: [1, 1, 1, 1, 1, 1, 2] },
  { name: 'timeouts and rejections count as failures', thresholds: { failure: 3, success: 1 }, steps: 'STRT', statuses: 'UUUD', versions: [1, 1, 1, 2] },
  { name: 'DOWN comes back UP after `success` successes', thresholds: { failure: 2, success: 3 }, steps: 'FSSS', statuses: 'DDDU', versions: [1, 1, 1, 2] },
  { name: 'a failure in between restarts the success count', thresholds: { failure: 2, success: 2 }, steps: 'FSFSS', statuses: 'DDDDU', versions: [1, 1, 1, 1, 2] },
  { name: 'success threshold 1 flips on the first success', thresholds: { failure: 2, success: 1 }, steps: 'FS', statuses: 'DU', versions: [1, 2] },
  { name: 'further failures while DOWN change nothing', thresholds: { failure: 2, success: 1 }, steps: 'SFFFFF', statuses: 'UUDDDD', versions: [1, 1, 2, 2, 2, 2] },
  { name: 'flapping: each flip bumps the version exactly once', thresholds: { failure: 2, success: 2 }, steps: 'SFFSSFFSS', statuses: 'UUDDUUDDU', versions: [1, 1, 2, 2, 3, 3, 4, 4, 5] },
  { name: 'successes while UP change nothing', thresholds: { failure: 1, success: 1 }, steps: 'SSSS', statuses: 'UUUU', versions: [1, 1, 1, 1] },
];

const letter: Record<CheckStatus, string> = { UP: 'U', DOWN: 'D', UNKNOWN: '?' };

describe('applyRun hysteresis (table)', () => {
  for (const row of TABLE) {
    it(row.name, () => {
      const states = play(row.steps, row.thresholds);
      assert.equal(states.map((s) => letter[s.status]).join(''), row.statuses, 'statuses');
      assert.deepEqual(states.map((s) => s.version), row.versions, 'versions');
      // version increments exactly on status changes
      let previous: CheckState = base();
      for (const [i, state] of states.entries()) {
        const changed = state.status !== previous.status;
        assert.equal(state.version - previous.version, changed ? 1 : 0, `step ${i}: version delta`);
        assert.equal(state.lastChangeAt, changed ? T0 + i * 1000 : previous.lastChangeAt, `step ${i}: lastChangeAt`);
        previous = state;
      }
    });
  }

  it('tracks counters, timestamps, outcome, message and breaker per run', () => {
    const thresholds = { failure: 3, success: 1 };
    const states = play('SFTRS', thresholds);
    const expected: Array<Pick<CheckState, 'consecutiveFailures' | 'consecutiveSuccesses' | 'lastCheckedAt' | 'lastSuccessAt' | 'outcome' | 'message' | 'latencyMs' | 'breaker'>> = [
      { consecutiveFailures: 0, consecutiveSuccesses: 1, lastCheckedAt: T0, lastSuccessAt: T0, outcome: 'success', message: 'ok #0', latencyMs: 10, breaker: 'closed' },
      { consecutiveFailures: 1, consecutiveSuccesses: 0, lastCheckedAt: T0 + 1000, lastSuccessAt: T0, outcome: 'failure', message: 'failure #1', latencyMs: 11, breaker: 'closed' },
      { consecutiveFailures: 2, consecutiveSuccesses: 0, lastCheckedAt: T0 + 2000, lastSuccessAt: T0, outcome: 'timeout', message: 'timeout #2', latencyMs: 12, breaker: 'closed' },
      // a rejected run never reached the dependency: it keeps the previous latency
      { consecutiveFailures: 3, consecutiveSuccesses: 0, lastCheckedAt: T0 + 3000, lastSuccessAt: T0, outcome: 'rejected', message: 'rejected #3', latencyMs: 12, breaker: 'open' },
      { consecutiveFailures: 0, consecutiveSuccesses: 1, lastCheckedAt: T0 + 4000, lastSuccessAt: T0 + 4000, outcome: 'success', message: 'ok #4', latencyMs: 14, breaker: 'closed' },
    ];
    assert.deepEqual(
      states.map((s) => ({ consecutiveFailures: s.consecutiveFailures, consecutiveSuccesses: s.consecutiveSuccesses, lastCheckedAt: s.lastCheckedAt, lastSuccessAt: s.lastSuccessAt, outcome: s.outcome, message: s.message, latencyMs: s.latencyMs, breaker: s.breaker })),
      expected,
    );
    assert.deepEqual(states.map((s) => letter[s.status]).join(''), 'UUUDU');
  });

  it('a rejection as the very first result keeps latency null (nothing was measured)', () => {
    const [state] = play('R', { failure: 1, success: 1 });
    assert.equal(state!.latencyMs, null);
    assert.equal(state!.lastSuccessAt, null);
    assert.equal(state!.consecutiveFailures, 1);
  });

  it('never mutates its input and keeps the static fields', () => {
    const before = base();
    const frozen = Object.freeze({ ...before, groups: Object.freeze([...before.groups]) }) as CheckState;
    const after = applyRun(frozen, run('F', 0), { failure: 1, success: 1 });
    assert.deepEqual(frozen, before);
    assert.equal(after.name, 'db');
    assert.equal(after.kind, 'postgres');
    assert.equal(after.critical, true);
    assert.deepEqual(after.groups, ['ready']);
  });
});

function checkConfig(name: string, thresholds = '{ failure: 2, success: 1 }', kind = 'tcp'): CheckConfig {
  const url = kind === 'redis' ? 'redis://127.0.0.1:1' : 'tcp://127.0.0.1:1';
  const config = parseConfig(
    ['checks:', `  - name: ${name}`, `    kind: ${kind}`, `    url: ${url}`, `    thresholds: ${thresholds}`, '    groups: [ready, startup]', ''].join('\n'),
    'state-test.yaml',
    { env: {} },
  );
  return config.checks[0]!;
}

describe('HealthStore', () => {
  it('records runs with the check thresholds, emits one transition per status change and bumps the generation only then', () => {
    const store = new HealthStore();
    store.upsert(checkConfig('db'));
    const transitions: Array<Pick<Transition, 'check' | 'from' | 'to' | 'message' | 'at'>> = [];
    let changes = 0;
    store.onTransition((t) => transitions.push({ check: t.check, from: t.from, to: t.to, message: t.message, at: t.at }));
    store.onChange(() => changes++);
    const generation0 = store.generation;
    const steps: Step[] = ['S', 'F', 'F', 'F', 'S'];
    steps.forEach((step, i) => store.record('db', run(step, i)));
    assert.deepEqual(transitions, [
      { check: 'db', from: 'UNKNOWN', to: 'UP', message: 'ok #0', at: T0 },
      { check: 'db', from: 'UP', to: 'DOWN', message: 'failure #2', at: T0 + 2000 },
      { check: 'db', from: 'DOWN', to: 'UP', message: 'ok #4', at: T0 + 4000 },
    ]);
    assert.equal(store.generation - generation0, 3);
    assert.equal(changes, 3);
    assert.equal(store.get('db')!.version, 3);
  });

  it('record for an unknown (removed) check is ignored', () => {
    const store = new HealthStore();
    assert.equal(store.record('nope', run('S', 0)), undefined);
    assert.deepEqual(store.names(), []);
  });

  it('upsert keeps state across a reload of the same kind and resets it when the kind changes', () => {
    const store = new HealthStore();
    store.upsert(checkConfig('db'));
    store.record('db', run('S', 0));
    const generation = store.generation;
    store.upsert(checkConfig('db', '{ failure: 1, success: 1 }'));
    assert.equal(store.get('db')!.status, 'UP');
    assert.ok(store.generation > generation, 'a reload changes the generation');
    // the new thresholds apply: one failure flips now
    store.record('db', run('F', 1));
    assert.equal(store.get('db')!.status, 'DOWN');
    store.upsert(checkConfig('db', '{ failure: 1, success: 1 }', 'redis'));
    assert.equal(store.get('db')!.status, 'UNKNOWN');
    assert.equal(store.get('db')!.kind, 'redis');
  });

  it('reset returns the check to UNKNOWN with a higher version and tells listeners', () => {
    const store = new HealthStore();
    store.upsert(checkConfig('db'));
    store.record('db', run('F', 0));
    const seen: string[] = [];
    store.onTransition((t) => seen.push(`${t.from}->${t.to}:${t.message}`));
    const state = store.reset('db')!;
    assert.equal(state.status, 'UNKNOWN');
    assert.equal(state.version, 2);
    assert.equal(state.consecutiveFailures, 0);
    assert.deepEqual(seen, ['DOWN->UNKNOWN:reset by operator']);
    assert.equal(store.reset('nope'), undefined);
  });

  it('a breaker change moves the generation (the /health ETag) but not the version, and tells no transition listener', () => {
    const store = new HealthStore();
    store.upsert(checkConfig('db'));
    store.record('db', run('F', 0));
    const transitions: string[] = [];
    store.onTransition((t) => transitions.push(t.to));
    const generation = store.generation;
    store.setBreaker('db', 'open');
    assert.equal(store.get('db')!.breaker, 'open');
    assert.equal(store.get('db')!.version, 1);
    assert.equal(store.generation, generation + 1);
    store.setBreaker('db', 'open'); // unchanged: nothing moves
    assert.equal(store.generation, generation + 1);
    store.setBreaker('nope', 'open');
    assert.equal(store.generation, generation + 1);
    assert.deepEqual(transitions, []);
  });

  it('a throwing listener does not break state keeping or other listeners', () => {
    const store = new HealthStore();
    store.upsert(checkConfig('db'));
    const seen: string[] = [];
    store.onTransition(() => {
      throw new Error('listener bug');
    });
    store.onTransition((t) => seen.push(t.to));
    store.record('db', run('S', 0));
    assert.deepEqual(seen, ['UP']);
    assert.equal(store.get('db')!.status, 'UP');
  });
});
