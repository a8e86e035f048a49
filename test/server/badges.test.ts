/**
 * Badge routes over real HTTP (the sidecar's own Router and server on port
 * 0) reading a real history: every badge is well-formed SVG (an XML parser)
 * with the right text and colour; ETag → 304, and a new run changes the tag;
 * uptime and response time are details (404 without them, like an unknown
 * check), the health badge is not; bad windows and paths are clear errors.
 * Then every badge is rendered by real Chromium as an <img> at its intrinsic
 * size, and a screenshot of them is left in test-output/badges.png.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { DAY_MS, History, HOUR_MS, MINUTE_MS } from '../../src/health/history';
import { createHttpServer, Router } from '../../src/server/app';
import { Authenticator } from '../../src/server/auth';
import { BADGE_COLOR } from '../../src/server/badge-svg';
import { registerBadgeRoutes, type UptimeCheck } from '../../src/server/uptime';
import { createLogger } from '../../src/telemetry/log';
import { parseSvg } from './badge-svg.test';

const KEY = 'badge-key-0123456789abcdef';
const OUTPUT = resolve(__dirname, '../../test-output');
const now = Date.UTC(2030, 0, 10, 12, 0, 30);
const history = new History(() => now);
const checks = new Map<string, UptimeCheck>([
  ['api', { name: 'api', status: 'UP', slo: { objective: 0.999, windowMs: 30 * DAY_MS, window: '30d' }, latency: { warnAbove: 300, failAbove: 1000 } }],
  ['db', { name: 'db', status: 'DOWN' }],
  ['cache', { name: 'cache', status: 'UP', slow: true }],
  ['fresh', { name: 'fresh', status: 'UNKNOWN' }],
]);
let base = '';
let closeServer: () => Promise<void>;

before(async () => {
  // api: 2 days at one run a minute, 1 failure in the last hour, latency 120 ms; db: failing for the last 3 hours at 40 ms
  for (let t = now - 2 * DAY_MS; t <= now; t += MINUTE_MS) {
    history.record('api', { finishedAt: t, outcome: t === now - 30 * MINUTE_MS ? 'failure' : 'success', latencyMs: 120 });
    history.record('db', { finishedAt: t, outcome: t > now - 3 * HOUR_MS ? 'timeout' : 'success', latencyMs: 40 });
    history.record('cache', { finishedAt: t, outcome: 'success', latencyMs: 420 });
  }
  const auth = new Authenticator([{ name: 'ops', key: KEY }]);
  const router = new Router();
  registerBadgeRoutes(router, {
    check: (name) => checks.get(name),
    window: (name, ms) => history.window(name, ms),
    canSeeDetails: (ctx) => ctx.identity.kind === 'key',
    detailsArePublic: () => false,
  });
  const server = createHttpServer({ router, identify: (req) => auth.identify(req), logger: createLogger({ level: 'silent' }) });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closeServer = () => new Promise((r) => server.close(() => r()));
});
after(() => closeServer?.());

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers: { 'x-api-key': KEY, ...headers } });

async function badge(path: string): Promise<{ label: string; value: string; color: string; etag: string | null; cache: string | null }> {
  const res = await get(path);
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  assert.equal(res.headers.get('content-type'), 'image/svg+xml; charset=utf-8');
  assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; style-src 'unsafe-inline'");
  const svg = parseSvg(await res.text());
  const texts = Array.from(svg.getElementsByTagName('text')).map((t) => t.textContent ?? '');
  const value = Array.from(svg.getElementsByTagName('rect')).find((r) => r.getAttribute('x') !== null && r.getAttribute('fill') !== 'url(#s)');
  return { label: texts[0]!, value: texts[2]!, color: value!.getAttribute('fill')!, etag: res.headers.get('etag'), cache: res.headers.get('cache-control') };
}

describe('badges', () => {
  test('uptime, response time and health badges say what the history says, coloured by thresholds', async () => {
    // api: 1 failed run of 60 in the last hour → 98.33 % (below its 99.9 % objective by more than one budget: very bad)
    assert.deepEqual(await badge('/badges/api/uptime/1h.svg').then((b) => [b.label, b.value, b.color]), ['uptime 1h', '98.33%', BADGE_COLOR.veryBad]);
    // 24 h: 1 of 1,440 → 99.93 % ≥ 99.9 % objective
    assert.deepEqual(await badge('/badges/api/uptime/24h.svg').then((b) => [b.label, b.value, b.color]), ['uptime 24h', '99.93%', BADGE_COLOR.awesome]);
    assert.deepEqual(await badge('/badges/api/uptime/30d.svg').then((b) => [b.value, b.color]), ['99.96%', BADGE_COLOR.awesome]);
    // latency budget of api: 120 ms ≤ warnAbove 300 ms
    assert.deepEqual(await badge('/badges/api/response-time/24h.svg').then((b) => [b.label, b.value, b.color]), ['response time 24h', '120ms', BADGE_COLOR.awesome]);
    // db has no SLO: Gatus's scale; 3 h of 24 failing → 87.5 % → passable
    assert.deepEqual(await badge('/badges/db/uptime/24h.svg').then((b) => [b.value, b.color]), ['87.5%', BADGE_COLOR.passable]);
    assert.deepEqual(await badge('/badges/db/uptime/1h.svg').then((b) => [b.value, b.color]), ['0%', BADGE_COLOR.veryBad]);
    // cache: 420 ms without a budget → Gatus thresholds: ≤ 500 passable
    assert.deepEqual(await badge('/badges/cache/response-time/7d.svg').then((b) => [b.value, b.color]), ['420ms', BADGE_COLOR.passable]);
    assert.deepEqual(await badge('/badges/fresh/uptime/7d.svg').then((b) => [b.value, b.color]), ['no data', BADGE_COLOR.noData]);
    const health = await Promise.all(['api', 'db', 'cache', 'fresh'].map((c) => badge(`/badges/${c}/health.svg`)));
    assert.deepEqual(health.map((b) => [b.label, b.value, b.color]), [
      ['health', 'up', BADGE_COLOR.awesome],
      ['health', 'down', BADGE_COLOR.veryBad],
      ['health', 'slow', BADGE_COLOR.passable],
      ['health', 'unknown', BADGE_COLOR.noData],
    ]);
    assert.equal(health[0]!.cache, 'public, no-cache', 'the state is public');
    assert.equal((await badge('/badges/api/uptime/24h.svg')).cache, 'private, no-cache', 'details are not (showDetails is not always)');
  });

  test('ETag: the same badge is a 304; a new run changes it', async () => {
    const first = await badge('/badges/db/uptime/1h.svg');
    assert.match(first.etag ?? '', /^"[A-Za-z0-9_-]{22}"$/);
    const again = await get('/badges/db/uptime/1h.svg', { 'if-none-match': first.etag! });
    assert.equal(again.status, 304);
    assert.equal(await again.text(), '');
    assert.equal(again.headers.get('etag'), first.etag);
    assert.equal((await get('/badges/db/uptime/1h.svg', { 'if-none-match': `W/${first.etag}, "other"` })).status, 304, 'weak comparison, lists');
    history.record('db', { finishedAt: now, outcome: 'success', latencyMs: 40 });
    const changed = await get('/badges/db/uptime/1h.svg', { 'if-none-match': first.etag! });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers.get('etag'), first.etag);
  });

  test('details hidden: uptime and response time are 404 like an unknown check; health is not; errors are JSON', async () => {
    const anonymous = (path: string) => fetch(`${base}${path}`);
    const unknown = await anonymous('/badges/nope/uptime/24h.svg');
    assert.equal(unknown.status, 404);
    const unknownBody = await unknown.json();
    for (const path of ['/badges/api/uptime/24h.svg', '/badges/api/response-time/1h.svg']) {
      const res = await anonymous(path);
      assert.equal(res.status, 404, path);
      assert.deepEqual(await res.json(), { error: { code: 'unknown_check', message: 'no check named "api"' } });
    }
    assert.deepEqual(unknownBody, { error: { code: 'unknown_check', message: 'no check named "nope"' } });
    assert.equal((await anonymous('/badges/api/health.svg')).status, 200);
    assert.equal((await fetch(`${base}/badges/api/uptime/24h.svg`, { headers: { 'x-api-key': 'wrong' } })).status, 404);
    const badWindow = await get('/badges/api/uptime/2d.svg');
    assert.equal(badWindow.status, 400);
    assert.deepEqual(await badWindow.json(), { error: { code: 'bad_window', message: 'window must be one of 1h, 24h, 7d, 30d' } });
    for (const path of ['/badges/api/uptime.svg', '/badges/api/latency/1h.svg', '/badges/api/health.png', '/badges/api/uptime/24h.svg/x']) {
      assert.equal((await get(path)).status, 404, path);
    }
    assert.equal((await get('/badges/api/health.svg?x=1')).status, 400);
    const head = await fetch(`${base}/badges/api/health.svg`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    assert.equal((await fetch(`${base}/badges/api/health.svg`, { method: 'POST' })).status, 405);
  });

  describe('in Chromium', () => {
    let browser: Browser;
    before(async () => {
      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    });
    after(() => browser?.close());

    test('every badge renders as an image at its intrinsic size', async () => {
      // images cannot send a key: a second server whose details are public (showDetails: always)
      const router = new Router();
      registerBadgeRoutes(router, { check: (n) => checks.get(n), window: (n, ms) => history.window(n, ms), canSeeDetails: () => true, detailsArePublic: () => true });
      const server = createHttpServer({ router, identify: () => ({ kind: 'anonymous' }), logger: createLogger({ level: 'silent' }) });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const open = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        const paths = ['api', 'db', 'cache', 'fresh'].flatMap((c) => [`/badges/${c}/health.svg`, ...['1h', '24h', '7d', '30d'].flatMap((w) => [`/badges/${c}/uptime/${w}.svg`, `/badges/${c}/response-time/${w}.svg`])]);
        const widths = await Promise.all(paths.map(async (p) => Number(parseSvg(await (await fetch(`${open}${p}`)).text()).getAttribute('width'))));
        const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
        const failed: string[] = [];
        page.on('requestfailed', (r) => failed.push(r.url()));
        await page.setContent(`<!doctype html><body style="background:#fff">${paths.map((p) => `<img src="${open}${p}" alt="${p}">`).join(' ')}</body>`, { waitUntil: 'load' });
        const rendered = await page.locator('img').evaluateAll((imgs) => imgs.map((i) => [(i as unknown as { complete: boolean }).complete, (i as unknown as { naturalWidth: number }).naturalWidth, (i as unknown as { naturalHeight: number }).naturalHeight]));
        assert.deepEqual(failed, []);
        assert.deepEqual(rendered, widths.map((w) => [true, w, 20]), 'each SVG decoded at its own width × 20');
        mkdirSync(OUTPUT, { recursive: true });
        await page.screenshot({ path: join(OUTPUT, 'badges.png'), fullPage: true });
        await page.close();
      } finally {
        await new Promise<void>((r) => server.close(() => r()));
      }
    });
  });
});
