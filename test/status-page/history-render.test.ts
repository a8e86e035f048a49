/**
 * The uptime part of the status page in real Chromium: a page rendered by
 * the status-page renderer from a real history (8 simulated days: a daily
 * latency wave, a 43-minute outage, an SLO of 99.9 % / 30 d) and served with
 * the page's own CSS, script and Content-Security-Policy. Per check: the
 * availability per window, the SLO budget bar, and the 24 h and 7 d charts
 * (hand-drawn SVG). No console error (a CSP violation would be one), no
 * request but to the page's origin, no horizontal scrolling on a phone;
 * screenshots at desktop and phone width in test-output/.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { DAY_MS, History, HISTORY_WINDOWS, HOUR_MS, MINUTE_MS } from '../../src/health/history';
import { sloReport } from '../../src/health/slo';
import { STATUS_CSS, STATUS_JS } from '../../src/server/status-page/assets';
import { renderPage, type CheckRow, type PageModel } from '../../src/server/status-page/render';
import { PAGE_CSP } from '../../src/server/status';

declare const document: { documentElement: { scrollWidth: number; clientWidth: number } };

const OUTPUT = resolve(__dirname, '../../test-output');
const now = Date.UTC(2030, 4, 20, 15, 7, 30);

function model(): PageModel {
  const history = new History(() => now);
  const outageStart = now - 20 * HOUR_MS;
  for (let t = now - 8 * DAY_MS; t <= now; t += MINUTE_MS) {
    const wave = 40 + 25 * Math.sin(((t % DAY_MS) / DAY_MS) * 2 * Math.PI);
    const down = t >= outageStart && t < outageStart + 43 * MINUTE_MS;
    history.record('payments', { finishedAt: t, outcome: down ? 'timeout' : 'success', latencyMs: down ? 2000 : wave });
    history.record('db', { finishedAt: t, outcome: Math.floor(t / MINUTE_MS) % 97 === 0 ? 'failure' : 'success', latencyMs: 3 + (Math.floor(t / MINUTE_MS) % 5) });
  }
  const slo = { objective: 0.999, windowMs: 30 * DAY_MS, window: '30d' };
  const report = sloReport(slo, '30d', (ms) => history.window('payments', ms));
  const row = (name: string, withSlo: boolean): CheckRow => ({
    name,
    status: 'UP',
    kind: 'http',
    critical: true,
    latencyMs: 42,
    message: 'status 200',
    lastChangeAt: now - 19 * HOUR_MS,
    lastCheckedAt: now - 2000,
    p95Ms5m: 48,
    successRatio1h: 1,
    recent: [],
    uptime: (['1h', '24h', '7d', '30d'] as const).map((w) => ({ window: w, availability: history.window(name, HISTORY_WINDOWS[w]).availability })),
    charts: { day: history.series(name, 'minute', 15, 96), week: history.series(name, 'hour', 1, 168) },
    ...(withSlo
      ? { slo: { objective: slo.objective, window: slo.window, availability: report.availability, remainingRatio: report.errorBudget.remainingRatio, totalMinutes: report.errorBudget.totalMinutes, remainingMinutes: report.errorBudget.remainingMinutes, coverage: report.coverage } }
      : {}),
  });
  return {
    title: 'checkout health',
    details: true,
    overall: 'UP',
    groups: { live: 'UP', ready: 'UP', startup: 'UP' },
    checks: [row('db', false), row('payments', true), { name: 'search', status: 'UNKNOWN', critical: false, latencyMs: null, message: 'not checked yet', recent: [], uptime: [{ window: '1h', availability: null }], charts: { day: [], week: [] } }],
    incidents: [],
    now,
    refreshSeconds: 300,
  };
}

let browser: Browser;
let server: http.Server;
let base = '';
before(async () => {
  const page = renderPage(model());
  server = http.createServer((req, res) => {
    const [type, body] =
      req.url === '/' ? ['text/html; charset=utf-8', page] : req.url === '/status/app.css' ? ['text/css', STATUS_CSS] : req.url === '/status/app.js' ? ['text/javascript', STATUS_JS] : ['text/plain', ''];
    res.writeHead(body ? 200 : 404, { 'content-type': type, 'content-security-policy': PAGE_CSP });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  mkdirSync(OUTPUT, { recursive: true });
});
after(async () => {
  await browser?.close();
  await new Promise<void>((r) => server?.close(() => r()));
});

describe('status page: uptime, SLO budget and response-time charts', () => {
  test('rendered under the page CSP with no errors; numbers, bars and charts per check; fits a phone', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('request', (r) => requests.push(new URL(r.url()).origin));
    await page.goto(`${base}/`, { waitUntil: 'load' });

    // availability per window, rounded down: the outage was 43 of the last 1,440 minutes
    const uptime = await page.locator('tr[data-history="payments"] .uptime div').evaluateAll((divs) => divs.map((d) => `${d.querySelector('dt')?.textContent} ${d.querySelector('dd')?.textContent}`));
    assert.deepEqual(uptime.slice(0, 2), ['1h 100%', `24h ${Math.floor((1 - 43 / 1440) * 100_000) / 1000}%`]);
    // the SLO: 43 failed minutes of 8 days of runs — the budget is overspent (the window is judged on the runs it holds)
    assert.match((await page.locator('tr[data-history="payments"] .slo').innerText()).replace(/\s+/g, ' '), /^SLO 99\.9% \/ 30d: 99\.6\d*% /);
    assert.match((await page.locator('tr[data-history="payments"] .slo span.small:not(.muted)').textContent()) ?? '', /^budget overspent by \d+ min \(budget 43\.2 min\)$/);
    assert.equal(await page.locator('tr[data-history="payments"] .slo span.small.muted').last().textContent(), '(runs in 26% of the window)', '8 days of 30: the reader is told the history is young');
    assert.equal(await page.locator('tr[data-history="payments"] .slo svg.budget rect.b-out').getAttribute('width'), '0.0', 'an overspent budget is an empty bar');
    assert.equal(await page.locator('tr[data-history="db"] .slo').count(), 0, 'no SLO, no bar');
    // charts: two per check with history, each a line and one availability cell per period
    for (const name of ['payments', 'db']) {
      const charts = page.locator(`tr[data-history="${name}"] svg.rt`);
      assert.equal(await charts.count(), 2);
      assert.deepEqual(await charts.evaluateAll((svgs) => svgs.map((s) => [s.querySelectorAll('rect').length, s.querySelectorAll('polyline').length > 0])), [[96, true], [168, true]]);
    }
    // the outage shows: red cells (under the objective) in both charts of payments, none in db's (no SLO, ≥ 90 %)
    assert.ok((await page.locator('tr[data-history="payments"] svg.rt rect.c-bad').count()) >= 2);
    assert.equal(await page.locator('tr[data-history="db"] svg.rt rect.c-bad').count(), 0);
    assert.match((await page.locator('tr[data-history="payments"] svg.rt').first().getAttribute('aria-label')) ?? '', /^mean response time over 24 h, per 15 min: \d+(\.\d)? ms to 2000 ms; \d+ of 96 periods with failed runs$/);
    assert.equal(await page.locator('tr[data-history="search"] svg.rt').count(), 0);
    assert.equal(await page.locator('tr[data-history="search"] .charts').textContent(), 'No runs recorded yet: no response-time chart.');
    // db fails one run in 97: 24 h below 100 %, amber cells, no red ones
    assert.ok((await page.locator('tr[data-history="db"] svg.rt rect.c-some').count()) > 5);
    // drawn with the page's CSS (not browser defaults): the line takes the text colour, bad cells the DOWN colour
    assert.equal(await page.locator('tr[data-history="payments"] rect.c-bad').first().evaluate((el) => getComputedStyle(el).fill), 'rgb(207, 34, 46)');
    await page.screenshot({ path: join(OUTPUT, 'status-page-uptime.png'), fullPage: true });

    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no horizontal scroll on a phone (overflow ${overflow}px)`);
    await page.screenshot({ path: join(OUTPUT, 'status-page-uptime-phone.png'), fullPage: true });
    assert.deepEqual(problems, []);
    assert.deepEqual([...new Set(requests)], [base], 'nothing fetched from anywhere else');
    await page.close();
  });
});

declare function getComputedStyle(element: unknown): { fill: string };
