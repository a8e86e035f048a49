/**
 * Group rollup (a pure function) by table, and the lifecycle overrides of
 * GroupEvaluator: startup latching, ?exclude views, draining readiness.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupEvaluator, isServing, rollup, type GroupStatus, type Member } from '../../src/health/aggregate';
import { initialState, type CheckState, type CheckStatus } from '../../src/health/state';
import type { GroupName } from '../../src/config/types';

/** `U`/`D`/`?` status, `c`/`n` critical or not; e.g. 'Dn' = non-critical DOWN. */
function members(spec: string): Member[] {
  if (!spec.trim()) return [];
  return spec.split(' ').map((m) => ({ status: ({ U: 'UP', D: 'DOWN', '?': 'UNKNOWN' } as Record<string, CheckStatus>)[m[0]!]!, critical: m[1] === 'c' }));
}

const ROLLUP: Array<[spec: string, expected: GroupStatus, served: boolean]> = [
  ['', 'UP', true], // a group with no members is UP
  ['Uc', 'UP', true],
  ['Uc Un Uc', 'UP', true],
  ['Dc', 'DOWN', false],
  ['Uc Dc', 'DOWN', false],
  ['Dn', 'DEGRADED', true], // non-critical DOWN only
  ['Uc Dn Dn', 'DEGRADED', true],
  ['Dn Dc', 'DOWN', false], // critical DOWN wins over non-critical
  ['?c', 'UNKNOWN', false], // served as 503
  ['?n', 'UNKNOWN', false], // a non-critical member without a result also holds the group
  ['Uc ?c', 'UNKNOWN', false],
  ['Dn ?c', 'UNKNOWN', false],
  ['?c Dc', 'DOWN', false], // a known critical DOWN decides even while another is unknown
  ['Dc ?n Dn', 'DOWN', false],
];

describe('rollup (table)', () => {
  for (const [spec, expected, served] of ROLLUP) {
    it(`[${spec}] → ${expected} (${served ? '200' : '503'})`, () => {
      const status = rollup(members(spec));
      assert.equal(status, expected);
      assert.equal(isServing(status), served);
    });
  }

  it('is independent of member order', () => {
    for (const [spec, expected] of ROLLUP) {
      const reversed = members(spec).reverse();
      assert.equal(rollup(reversed), expected, spec);
    }
  });
});

function state(name: string, status: CheckStatus, groups: GroupName[], critical = true): CheckState {
  return { ...initialState({ name, kind: 'tcp', critical, groups }), status };
}

describe('GroupEvaluator', () => {
  it('evaluates each group over its members only', () => {
    const groups = new GroupEvaluator();
    const states = [state('app', 'UP', ['live', 'ready', 'startup']), state('db', 'DOWN', ['ready']), state('cache', 'DOWN', ['ready'], false)];
    const all = groups.evaluateAll(states);
    assert.deepEqual(
      Object.fromEntries(Object.entries(all).map(([g, v]) => [g, { status: v.status, members: v.members.map((m) => m.name), note: v.note }])),
      {
        live: { status: 'UP', members: ['app'], note: undefined },
        ready: { status: 'DOWN', members: ['app', 'db', 'cache'], note: undefined },
        startup: { status: 'UP', members: ['app'], note: undefined }, // latches now; the note shows from the next evaluation
      },
    );
    assert.equal(GroupEvaluator.overall(all), 'DOWN');
  });

  it('a group with no members is UP (live with no live checks)', () => {
    const groups = new GroupEvaluator();
    assert.equal(groups.evaluate('live', [state('db', 'DOWN', ['ready'])]).status, 'UP');
    assert.equal(groups.evaluate('ready', []).status, 'UP');
  });

  it('any UNKNOWN member holds the group UNKNOWN until every member has a result', () => {
    const groups = new GroupEvaluator();
    assert.equal(groups.evaluate('ready', [state('a', 'UP', ['ready']), state('b', 'UNKNOWN', ['ready'])]).status, 'UNKNOWN');
    assert.equal(groups.evaluate('ready', [state('a', 'UP', ['ready']), state('b', 'UP', ['ready'])]).status, 'UP');
  });

  it('startup latches once UP and stays UP after its members go DOWN', () => {
    const groups = new GroupEvaluator();
    const s = (status: CheckStatus) => [state('app', status, ['startup'])];
    assert.equal(groups.evaluate('startup', s('UNKNOWN')).status, 'UNKNOWN');
    assert.equal(groups.evaluate('startup', s('DOWN')).status, 'DOWN');
    assert.equal(groups.evaluate('startup', s('UP')).status, 'UP');
    assert.deepEqual({ ...groups.evaluate('startup', s('DOWN')), members: undefined }, { status: 'UP', members: undefined, note: 'started' });
    assert.equal(groups.evaluate('startup', s('UNKNOWN')).status, 'UP');
    // only startup latches: ready follows its members
    assert.equal(groups.evaluate('ready', [state('app', 'DOWN', ['ready'])]).status, 'DOWN');
  });

  it('startup latches on DEGRADED too (served 200 = started)', () => {
    const groups = new GroupEvaluator();
    assert.equal(groups.evaluate('startup', [state('app', 'UP', ['startup']), state('cdn', 'DOWN', ['startup'], false)]).status, 'DEGRADED');
    assert.equal(groups.evaluate('startup', [state('app', 'DOWN', ['startup'])]).status, 'UP');
  });

  it('observe() latches startup without anyone asking for the group', () => {
    const groups = new GroupEvaluator();
    groups.observe([state('app', 'UP', ['startup'])]);
    assert.equal(groups.evaluate('startup', [state('app', 'DOWN', ['startup'])]).status, 'UP');
    const fresh = new GroupEvaluator();
    fresh.observe([state('app', 'DOWN', ['startup'])]);
    assert.equal(fresh.evaluate('startup', [state('app', 'UP', ['startup']), state('db', 'DOWN', ['startup'])]).status, 'DOWN');
  });

  it('an ?exclude view leaves members out and does not latch startup', () => {
    const groups = new GroupEvaluator();
    const states = [state('app', 'UP', ['startup', 'ready']), state('db', 'DOWN', ['startup', 'ready'])];
    const view = groups.evaluate('startup', states, new Set(['db']));
    assert.equal(view.status, 'UP');
    assert.deepEqual(view.members.map((m) => m.name), ['app']);
    // not latched: the full group is still DOWN
    assert.equal(groups.evaluate('startup', states).status, 'DOWN');
    assert.equal(groups.evaluate('ready', states, new Set(['db'])).status, 'UP');
    assert.equal(groups.evaluate('ready', states, new Set(['app'])).status, 'DOWN');
  });

  it('an ?exclude of a name that is not a member changes nothing', () => {
    const groups = new GroupEvaluator();
    const states = [state('db', 'DOWN', ['ready'])];
    assert.equal(groups.evaluate('ready', states, new Set(['nope'])).status, 'DOWN');
  });

  it('draining makes ready DOWN (with a note) and leaves live and startup alone', () => {
    const groups = new GroupEvaluator();
    const states = [state('app', 'UP', ['live', 'ready', 'startup'])];
    assert.equal(groups.isDraining, false);
    assert.equal(groups.evaluate('ready', states).status, 'UP');
    groups.startDraining();
    assert.equal(groups.isDraining, true);
    const ready = groups.evaluate('ready', states);
    assert.equal(ready.status, 'DOWN');
    assert.equal(ready.note, 'shutting down');
    assert.equal(groups.evaluate('ready', states, new Set(['app'])).status, 'DOWN', 'exclude cannot undo draining');
    assert.equal(groups.evaluate('live', states).status, 'UP');
    assert.equal(groups.evaluate('startup', states).status, 'UP');
  });

  it('overall is the worst group, DEGRADED kept as such', () => {
    const view = (status: GroupStatus) => ({ status, members: [] });
    assert.equal(GroupEvaluator.overall({ live: view('UP'), ready: view('UP'), startup: view('UP') }), 'UP');
    assert.equal(GroupEvaluator.overall({ live: view('UP'), ready: view('DEGRADED'), startup: view('UP') }), 'DEGRADED');
    assert.equal(GroupEvaluator.overall({ live: view('UP'), ready: view('DEGRADED'), startup: view('UNKNOWN') }), 'UNKNOWN');
    assert.equal(GroupEvaluator.overall({ live: view('DOWN'), ready: view('DEGRADED'), startup: view('UNKNOWN') }), 'DOWN');
  });
});
