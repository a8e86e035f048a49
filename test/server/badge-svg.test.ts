/**
 * The badge renderer, pure: every badge is well-formed XML (a real XML
 * parser, fatal on any error), an <svg> in the SVG namespace whose width is
 * the sum of its two boxes and grows with the text, with an accessible title;
 * hostile text is escaped, never markup. Colours follow the thresholds
 * documented in docs/uptime.md (Gatus's scale; the SLO objective when set;
 * the check's latency budget when set). Rendering in Chromium is in
 * test/server/badges.test.ts, against the real routes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DOMParser, type Element } from '@xmldom/xmldom';
import { BADGE_COLOR, formatResponseTime, formatUptime, healthColor, renderBadge, responseTimeColor, uptimeColor } from '../../src/server/badge-svg';

export function parseSvg(text: string): Element {
  const doc = new DOMParser({
    onError: (level, message) => {
      throw new Error(`XML ${level}: ${message}`);
    },
  }).parseFromString(text, 'image/svg+xml');
  const root = doc.documentElement;
  assert.ok(root, 'a root element');
  assert.equal(root.tagName, 'svg');
  assert.equal(root.namespaceURI, 'http://www.w3.org/2000/svg');
  return root;
}

describe('badge SVG', () => {
  test('well-formed SVG: width = label box + value box, title and aria-label say both parts', () => {
    for (const [label, value] of [['uptime 30d', '99.95%'], ['response time 24h', '123ms'], ['health', 'up'], ['uptime 1h', 'no data']] as const) {
      const svg = parseSvg(renderBadge(label, value, BADGE_COLOR.awesome));
      const rects = Array.from(svg.getElementsByTagName('rect'));
      const [labelBox, valueBox] = rects.filter((r) => r.parentNode && (r.parentNode as Element).getAttribute('clip-path'));
      const width = Number(svg.getAttribute('width'));
      assert.equal(Number(labelBox!.getAttribute('width')) + Number(valueBox!.getAttribute('width')), width, `${label}: boxes fill the badge`);
      assert.equal(svg.getAttribute('height'), '20');
      assert.equal(svg.getElementsByTagName('title')[0]!.textContent, `${label}: ${value}`);
      assert.equal(svg.getAttribute('aria-label'), `${label}: ${value}`);
      const texts = Array.from(svg.getElementsByTagName('text')).map((t) => t.textContent);
      assert.deepEqual(texts, [label, label, value, value]);
      assert.equal(valueBox!.getAttribute('fill'), BADGE_COLOR.awesome);
    }
    // longer text, wider badge
    const short = Number(parseSvg(renderBadge('health', 'up', '#000')).getAttribute('width'));
    const long = Number(parseSvg(renderBadge('health', 'unknown', '#000')).getAttribute('width'));
    assert.ok(long > short + 20, `${long} > ${short}`);
  });

  test('hostile text is escaped, not markup', () => {
    const text = renderBadge('a<b>&"c\'', '<script>alert(1)</script>', '"/><script>');
    const svg = parseSvg(text);
    assert.equal(svg.getElementsByTagName('script').length, 0);
    assert.equal(svg.getElementsByTagName('title')[0]!.textContent, 'a<b>&"c\': <script>alert(1)</script>');
    assert.ok(!text.includes('<script>'));
  });

  test('uptime colours: Gatus scale without an SLO, the objective with one; formatting never rounds up to 100 %', () => {
    assert.deepEqual([1, 0.975, 0.96, 0.91, 0.85, 0.7, 0.5, null].map((a) => uptimeColor(a)), [
      BADGE_COLOR.awesome, BADGE_COLOR.awesome, BADGE_COLOR.great, BADGE_COLOR.good, BADGE_COLOR.passable, BADGE_COLOR.bad, BADGE_COLOR.veryBad, BADGE_COLOR.noData,
    ]);
    // 99.9 %: at or above → awesome, below by less than one more budget (≥ 99.8 %) → passable, else very bad
    assert.deepEqual([0.9995, 0.999, 0.9985, 0.998, 0.9979, 0.97].map((a) => uptimeColor(a, 0.999)), [
      BADGE_COLOR.awesome, BADGE_COLOR.awesome, BADGE_COLOR.passable, BADGE_COLOR.passable, BADGE_COLOR.veryBad, BADGE_COLOR.veryBad,
    ]);
    assert.deepEqual([1, 0.99999, 0.9995, 0.999, 0.95, 0.29, 0.123456, 0, null].map(formatUptime), ['100%', '99.99%', '99.95%', '99.9%', '95%', '29%', '12.34%', '0%', 'no data']);
  });

  test('response-time colours: Gatus thresholds, or the latency budget of the check', () => {
    assert.deepEqual([10, 50, 51, 200, 300, 500, 750, 751, null].map((ms) => responseTimeColor(ms)), [
      BADGE_COLOR.awesome, BADGE_COLOR.awesome, BADGE_COLOR.great, BADGE_COLOR.great, BADGE_COLOR.good, BADGE_COLOR.passable, BADGE_COLOR.bad, BADGE_COLOR.veryBad, BADGE_COLOR.noData,
    ]);
    const budget = { warnAbove: 300, failAbove: 1000 };
    assert.deepEqual([100, 300, 301, 1000, 1001].map((ms) => responseTimeColor(ms, budget)), [BADGE_COLOR.awesome, BADGE_COLOR.awesome, BADGE_COLOR.passable, BADGE_COLOR.passable, BADGE_COLOR.veryBad]);
    assert.deepEqual([100, 1001].map((ms) => responseTimeColor(ms, { failAbove: 1000 })), [BADGE_COLOR.awesome, BADGE_COLOR.veryBad]);
    assert.deepEqual([100, 301].map((ms) => responseTimeColor(ms, { warnAbove: 300 })), [BADGE_COLOR.awesome, BADGE_COLOR.passable]);
    assert.deepEqual([1.234, 12.6, 999.4, 12_345, null].map(formatResponseTime), ['1.2ms', '13ms', '999ms', '12.3s', 'no data']);
    assert.deepEqual((['UP', 'DOWN', 'SLOW', 'UNKNOWN'] as const).map(healthColor), [BADGE_COLOR.awesome, BADGE_COLOR.veryBad, BADGE_COLOR.passable, BADGE_COLOR.noData]);
  });
});
