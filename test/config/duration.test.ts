/** Duration strings: the accepted forms and the rejected ones, as a table. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../src/config/duration';

describe('parseDuration', () => {
  const valid: [string, number][] = [
    ['250ms', 250],
    ['5s', 5000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    ['14d', 14 * 86_400_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['0s', 0],
    ['0.5ms', 1],
    [' 2s ', 2000],
  ];
  for (const [text, ms] of valid) {
    it(`accepts ${JSON.stringify(text)} as ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  const invalid = ['', '5', '5 s', '-1s', '1y', 's', '5S', '1m 30s', '1.s', '.5s', '5sec', '1e3ms', 'Infinity', '5s-'];
  for (const text of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => assert.equal(parseDuration(text), undefined));
  }
});

describe('formatDuration', () => {
  it('uses the largest whole unit and round-trips through parseDuration', () => {
    const table: [number, string][] = [
      [250, '250ms'],
      [5000, '5s'],
      [90_000, '90s'],
      [60_000, '1m'],
      [3_600_000, '1h'],
      [14 * 86_400_000, '14d'],
      [0, '0ms'],
    ];
    assert.deepEqual(
      table.map(([ms]) => [ms, formatDuration(ms)]),
      table,
    );
    for (const [ms, text] of table) assert.equal(parseDuration(text), ms);
  });
});
