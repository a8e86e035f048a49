/**
 * Uptime history against a synthetic clock: 30 simulated days of runs (with
 * gaps, rejections, jittered intervals and late arrivals) compared at many
 * points with a brute-force reference that applies the documented window
 * rule to every run; the minute→hour roll-up; the window edges; memory
 * measured by the typed arrays' byteLength; restore (what a store returns)
 * merging with what was recorded meanwhile.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CheckHistory,
  DAY_MS,
  HISTORY_WINDOWS,
  History,
  HOUR_MS,
  MINUTE_MS,
  runDelta,
  type Counts,
  type HistoryRun,
  type HistoryWindow,
  type StoredHistory,
} from '../../src/health/history';
import type { Outcome } from '../../src/health/state';

const START = Date.parse('2030-01-01T00:00:00Z');

/** deterministic PRNG (mulberry32) so a failure replays */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Brute force: every run kept, windows computed by the rule in docs/uptime.md (whole buckets, current one included). */
class Reference {
  private readonly byMinute = new Map<number, Counts>();
  add(run: HistoryRun): void {
    const { minute, counts } = runDelta(run);
    const c = this.byMinute.get(minute) ?? { ok: 0, failed: 0, rejected: 0, latencyUs: 0 };
    c.ok += counts.ok;
    c.failed += counts.failed;
    c.rejected += counts.rejected;
    c.latencyUs += counts.latencyUs;
    this.byMinute.set(minute, c);
  }
  window(windowMs: number, now: number): Counts {
    const size = windowMs <= DAY_MS ? MINUTE_MS : HOUR_MS;
    const firstMinute = (Math.floor(now / size) - windowMs / size + 1) * (size / MINUTE_MS);
    const lastMinute = Math.floor(now / MINUTE_MS);
    const sum = { ok: 0, failed: 0, rejected: 0, latencyUs: 0 };
    for (let m = firstMinute; m <= lastMinute; m++) {
      const c = this.byMinute.get(m);
      if (!c) continue;
      sum.ok += c.ok;
      sum.failed += c.failed;
      sum.rejected += c.rejected;
      sum.latencyUs += c.latencyUs;
    }
    return sum;
  }
}

function run(at: number, outcome: Outcome, latencyMs = 5): HistoryRun {
  return { finishedAt: at, outcome, latencyMs };
}

describe('uptime history', () => {
  test('memory: the rings of one check take ≤ 32 KiB, allocated once, whatever is recorded', () => {
    const h = new CheckHistory();
    const before = h.byteLength;
    assert.ok(before <= 32 * 1024, `${before} bytes per check`);
    assert.equal(before, 1440 * (2 + 2 + 2 + 8) + 720 * (4 + 4 + 4 + 4));
    for (let i = 0; i < 100_000; i++) h.record(runDelta(run(START + i * 30_000, i % 7 ? 'success' : 'failure')));
    assert.equal(h.byteLength, before, 'no growth after 34 days of runs');
    const all = new History(() => START);
    for (let i = 0; i < 10; i++) all.record(`c${i}`, run(START, 'success'));
    assert.equal(all.byteLength, 10 * before);
  });

  test('30 simulated days (gaps, rejections, jitter, late runs) agree with a brute-force reference at every checkpoint', () => {
    const random = prng(18);
    let now = START;
    const history = new History(() => now);
    const reference = new Reference();
    const windows = Object.keys(HISTORY_WINDOWS) as HistoryWindow[];
    let checkpoints = 0;
    let nextCheckpoint = START + 5 * HOUR_MS + 17 * MINUTE_MS;
    let late: HistoryRun | undefined;
    const end = START + 31 * DAY_MS;
    while (now < end) {
      // every ~10 s; a 2-hour gap on day 3 (the sidecar was down) and a 30-minute one on day 20
      now += 9_000 + Math.floor(random() * 2_000);
      const day = (now - START) / DAY_MS;
      if ((day > 3 && day < 3 + 2 / 24) || (day > 20 && day < 20 + 0.5 / 24)) continue;
      const roll = random();
      const outcome: Outcome = roll < 0.9 ? 'success' : roll < 0.95 ? 'failure' : roll < 0.97 ? 'timeout' : 'rejected';
      const r = run(now, outcome, 1 + Math.floor(random() * 200_000) / 1000);
      // now and then a run is recorded a little after a later one (finished earlier, arrived later)
      if (!late && random() < 0.01) {
        late = r;
        continue;
      }
      history.record('db', r);
      reference.add(r);
      if (late) {
        history.record('db', late);
        reference.add(late);
        late = undefined;
      }
      if (now >= nextCheckpoint) {
        nextCheckpoint += 11 * HOUR_MS + 3 * MINUTE_MS;
        checkpoints++;
        for (const w of windows) {
          const got = history.window('db', HISTORY_WINDOWS[w]);
          const want = reference.window(HISTORY_WINDOWS[w], now);
          const where = `${w} at ${new Date(now).toISOString()}`;
          assert.deepEqual({ ok: got.ok, failed: got.failed, rejected: got.rejected }, { ok: want.ok, failed: want.failed, rejected: want.rejected }, where);
          assert.equal(got.runs, want.ok + want.failed + want.rejected, where);
          assert.equal(got.availability, got.runs ? want.ok / got.runs : null, where);
          // minute windows are exact; hour slots hold the latency sum as float32 (relative error < 1e-6)
          if (HISTORY_WINDOWS[w] <= DAY_MS) assert.equal(got.latencyUs, want.latencyUs, where);
          else assert.ok(Math.abs(got.latencyUs - want.latencyUs) <= want.latencyUs * 1e-6, `${where}: ${got.latencyUs} vs ${want.latencyUs}`);
        }
      }
    }
    assert.ok(checkpoints >= 60, `${checkpoints} checkpoints`);
    // after 31 days, the first day is out of the 30-day window, and the 30-day window is full
    const thirty = history.window('db', HISTORY_WINDOWS['30d']);
    assert.ok(thirty.from > START + DAY_MS - HOUR_MS, 'the 30d window starts on day 2');
    assert.ok(thirty.coverage > 0.99 && thirty.coverage < 1, `coverage ${thirty.coverage} (the gap on day 20 has no runs)`);
  });

  test('roll-up: an hour slot is the sum of its 60 minutes, and outlives them', () => {
    let now = START;
    const h = new CheckHistory();
    const perMinute: Counts[] = [];
    // hour 0: minute m has m ok runs, (m % 3) failed, (m % 5 === 0 ? 1 : 0) rejected, latency 1 ms each reached run
    for (let m = 0; m < 60; m++) {
      const c = { ok: m, failed: m % 3, rejected: m % 5 === 0 ? 1 : 0, latencyUs: 0 };
      for (let i = 0; i < c.ok; i++) h.record(runDelta(run(START + m * MINUTE_MS + i * 100, 'success', 1)));
      for (let i = 0; i < c.failed; i++) h.record(runDelta(run(START + m * MINUTE_MS + 50_000 + i, 'timeout', 1)));
      for (let i = 0; i < c.rejected; i++) h.record(runDelta(run(START + m * MINUTE_MS + 59_000, 'rejected', 99)));
      c.latencyUs = (c.ok + c.failed) * 1000;
      perMinute.push(c);
    }
    const hour0 = START / HOUR_MS;
    const expected = perMinute.reduce((s, c) => ({ ok: s.ok + c.ok, failed: s.failed + c.failed, rejected: s.rejected + c.rejected, latencyUs: s.latencyUs + c.latencyUs }), { ok: 0, failed: 0, rejected: 0, latencyUs: 0 });
    // not rolled up yet: read from the minutes
    assert.deepEqual(h.hour(hour0), expected);
    // the first run of the next hour rolls it up
    now = START + HOUR_MS + 1;
    h.record(runDelta(run(now, 'success', 2)));
    assert.deepEqual(h.hour(hour0), expected);
    assert.deepEqual(h.minute(START / MINUTE_MS + 7), perMinute[7]);
    // 25 hours later the minutes are gone, the hour stays (for 30 days)
    now = START + 25 * HOUR_MS;
    h.record(runDelta(run(now, 'success', 2)));
    assert.deepEqual(h.minute(START / MINUTE_MS + 7), { ok: 0, failed: 0, rejected: 0, latencyUs: 0 });
    assert.deepEqual(h.hour(hour0), expected);
    assert.deepEqual(h.hour(hour0 + 1), { ok: 1, failed: 0, rejected: 0, latencyUs: 2000 });
    // the 30-day window holds hour 0 until the 720th hour after it begins
    now = START + 30 * DAY_MS - 1;
    h.record(runDelta(run(now, 'success', 2)));
    assert.equal(h.window(HISTORY_WINDOWS['30d'], now).ok, expected.ok + 3);
    now = START + 30 * DAY_MS;
    h.record(runDelta(run(now, 'success', 2)));
    assert.equal(h.window(HISTORY_WINDOWS['30d'], now).ok, 4, 'hour 0 left the window');
    // one more hour and its slot is reused
    now += HOUR_MS;
    h.record(runDelta(run(now, 'success', 2)));
    assert.deepEqual(h.hour(hour0), { ok: 0, failed: 0, rejected: 0, latencyUs: 0 });
    // a month of silence then one run: everything older is gone
    h.record(runDelta(run(now + 40 * DAY_MS, 'failure', 3)));
    const all = h.window(HISTORY_WINDOWS['30d'], now + 40 * DAY_MS);
    assert.deepEqual([all.ok, all.failed, all.rejected], [0, 1, 0]);
  });

  test('window edges: whole buckets, the current one included (minutes up to 24 h, hours beyond)', () => {
    const at = (iso: string) => Date.parse(`2030-01-10T${iso}Z`);
    let now = at('12:00:30');
    const history = new History(() => now);
    for (const t of ['11:55:59.999', '11:56:00', '11:59:59', '12:00:10']) history.record('db', run(at(t), 'success'));
    // 5m at 12:00:30 = 11:56 … 12:00: the run at 11:55:59.999 is out, 11:56:00 is in
    let five = history.window('db', HISTORY_WINDOWS['5m']);
    assert.equal(five.runs, 3);
    assert.equal(five.from, at('11:56:00'));
    assert.equal(five.coverage, 3 / 5);
    // a minute later the 11:56 run leaves the window
    now = at('12:01:00');
    five = history.window('db', HISTORY_WINDOWS['5m']);
    assert.equal(five.runs, 2);
    // 24h = 1,440 minutes: a run 23:59 before the current minute's start is in, one minute older is out
    now = at('12:00:30');
    history.record('x', run(at('12:00:00') - 1439 * MINUTE_MS, 'success'));
    history.record('x', run(at('12:00:00') - 1439 * MINUTE_MS - 1, 'failure'));
    history.record('x', run(now, 'success'));
    const day = history.window('x', HISTORY_WINDOWS['24h']);
    assert.deepEqual([day.ok, day.failed], [2, 0]);
    assert.equal(day.from, at('12:01:00') - DAY_MS);
    // 3d = 72 hours: the current hour (12:xx) and the 71 before it
    const h = new History(() => now);
    h.record('y', run(at('13:00:00') - 72 * HOUR_MS, 'success'));
    h.record('y', run(at('13:00:00') - 72 * HOUR_MS - 1, 'failure'));
    h.record('y', run(now, 'success'));
    const three = h.window('y', HISTORY_WINDOWS['3d']);
    assert.deepEqual([three.ok, three.failed], [2, 0]);
    assert.equal(three.from, at('13:00:00') - 3 * DAY_MS);
    // a check that never ran: zeros and nulls, not an error
    const none = h.window('nope', HISTORY_WINDOWS['7d']);
    assert.deepEqual([none.runs, none.availability, none.meanLatencyMs, none.coverage], [0, null, null, 0]);
  });

  test('what a run counts as: rejected runs are unavailable and have no latency; mean over reached runs', () => {
    const now = START + 30_000;
    const history = new History(() => now);
    history.record('db', run(START + 1000, 'success', 10));
    history.record('db', run(START + 2000, 'failure', 30));
    history.record('db', run(START + 3000, 'timeout', 2000));
    history.record('db', run(START + 4000, 'rejected', 0));
    const w = history.window('db', HISTORY_WINDOWS['5m']);
    assert.deepEqual([w.ok, w.failed, w.rejected, w.runs], [1, 2, 1, 4]);
    assert.equal(w.availability, 0.25);
    assert.equal(w.meanLatencyMs, 680, '(10 + 30 + 2000) / 3: the rejected run has no latency');
  });

  test('a minute slot saturates instead of wrapping', () => {
    const h = new CheckHistory();
    h.record({ minute: 100, counts: { ok: 65_000, failed: 0, rejected: 0, latencyUs: 0 } });
    h.record({ minute: 100, counts: { ok: 1_000, failed: 0, rejected: 0, latencyUs: 0 } });
    assert.equal(h.minute(100).ok, 65_535);
  });

  test('series: aligned chart points, oldest first, the last one containing now', () => {
    const now = Date.parse('2030-01-10T12:07:00Z');
    const history = new History(() => now);
    history.record('db', run(Date.parse('2030-01-10T11:58:00Z'), 'failure', 40));
    history.record('db', run(Date.parse('2030-01-10T12:01:00Z'), 'success', 20));
    history.record('db', run(Date.parse('2030-01-10T12:06:00Z'), 'success', 10));
    const points = history.series('db', 'minute', 15, 3);
    assert.deepEqual(points.map((p) => new Date(p.from).toISOString()), ['2030-01-10T11:30:00.000Z', '2030-01-10T11:45:00.000Z', '2030-01-10T12:00:00.000Z']);
    assert.deepEqual(points.map((p) => [p.ok, p.failed, p.meanLatencyMs]), [[0, 0, null], [0, 1, 40], [2, 0, 15]]);
    assert.deepEqual(new History(() => now).series('db', 'hour', 1, 2).map((p) => p.runs), [0, 0]);
  });

  test('restore: stored buckets merge with what was recorded meanwhile; hours only where already rolled up', () => {
    const now = START + 2 * DAY_MS + 30 * MINUTE_MS; // 00:30 on day 3
    const history = new History(() => now);
    // recorded in memory before the store answered
    history.record('db', run(now - 60_000, 'success', 4));
    const minute = Math.floor(now / MINUTE_MS);
    const hour = Math.floor(now / HOUR_MS);
    const stored: StoredHistory = {
      minutes: [
        { minute: minute - 1, counts: { ok: 5, failed: 1, rejected: 0, latencyUs: 6000 } },
        { minute: minute - 2 * 60, counts: { ok: 3, failed: 0, rejected: 2, latencyUs: 3000 } }, // 22:30 yesterday
        { minute: minute - 2 * 24 * 60, counts: { ok: 99, failed: 0, rejected: 0, latencyUs: 0 } }, // older than 24 h: the hours have it
        { minute: minute + 24 * 60, counts: { ok: 77, failed: 0, rejected: 0, latencyUs: 0 } }, // a day ahead: a wrong clock, dropped
      ],
      hours: [
        { hour: hour - 2, counts: { ok: 3, failed: 0, rejected: 2, latencyUs: 3000 } }, // the 22:00 hour (its minute above)
        { hour: hour - 48, counts: { ok: 99, failed: 0, rejected: 0, latencyUs: 0 } },
        { hour, counts: { ok: 6, failed: 1, rejected: 0, latencyUs: 10_000 } }, // the current hour: read from its minutes instead
        { hour: hour - 800, counts: { ok: 1, failed: 0, rejected: 0, latencyUs: 0 } }, // older than 30 days
      ],
    };
    history.restore('db', stored);
    const w = (name: HistoryWindow) => {
      const s = history.window('db', HISTORY_WINDOWS[name]);
      return [s.ok, s.failed, s.rejected];
    };
    assert.deepEqual(w('5m'), [6, 1, 0]);
    assert.deepEqual(w('6h'), [9, 1, 2]);
    assert.deepEqual(w('24h'), [9, 1, 2]);
    assert.deepEqual(w('3d'), [108, 1, 2]);
    assert.deepEqual(w('30d'), [108, 1, 2]);
  });
});
