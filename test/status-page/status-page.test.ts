/**
 * The status page in real headless Chromium (Debian `chromium` driven by
 * playwright-core): loads with no console errors, shows every check with the
 * right state (colour class AND text label), updates by itself after a real
 * dependency starts answering 500, and leaves screenshots under test-output/.
 * Chromium missing is a failure, never a skip (CI installs it).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parseConfig } from '../../src/probes/registry';
import { Sidecar } from '../../src/sidecar';
import { createLogger } from '../../src/telemetry/log';
import { REDIS_URL, freePort, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';

// browser globals used inside page.evaluate callbacks (the test tsconfig has no DOM lib)
declare const document: { documentElement: { scrollWidth: number; clientWidth: number }; getElementById(id: string): { textContent: string | null } | null };
declare function getComputedStyle(element: unknown): { backgroundColor: string };

const OUTPUT = resolve(__dirname, '../../test-output');
const KEY = 'admin-key-0123456789abcdef';

function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, (() => {
    try {
      return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
    } catch {
      return undefined;
    }
  })(), '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((p): p is string => !!p && existsSync(p));
  if (!found) throw new Error('chromium not found: install the Debian package `chromium` (CI does) or set CHROMIUM_PATH; the status page test cannot run without a browser');
  return found;
}

let browser: Browser;
let appStatus = 200;
let app: TestHttpServer;
const cleanups: (() => Promise<unknown> | void)[] = [];

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  app = await startHttpServer((_req, res) => {
    res.writeHead(appStatus, { 'content-type': 'text/plain' });
    res.end(appStatus === 200 ? 'ok' : 'database pool exhausted');
  });
  cleanups.push(() => app.close());
});
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
  await browser?.close();
});

async function startSidecar(showDetails: string): Promise<{ sidecar: Sidecar; base: string }> {
  const closedPort = await freePort();
  const cfg = parseConfig(
    `
telemetry: { serviceName: checkout }
server: { port: 0, host: 127.0.0.1, showDetails: ${showDetails}, auth: { keys: [ { name: ops, key: "${KEY}" } ] } }
defaults: { interval: 1s, timeout: 1s, retry: { attempts: 1 }, thresholds: { failure: 2 } }
checks:
  - { name: app, kind: http, url: "${app.url}/healthz" }
  - { name: cache, kind: redis, url: "${REDIS_URL}" }
  - { name: search, kind: tcp, url: "tcp://127.0.0.1:${closedPort}", critical: false }
`,
    'status.yaml',
    { env: {} },
  );
  const sidecar = new Sidecar(cfg, createLogger({ level: 'silent' }));
  cleanups.push(() => sidecar.shutdown({ drain: false }));
  const port = await sidecar.start();
  await waitFor(() => sidecar.store.all().every((s) => s.status !== 'UNKNOWN') && sidecar.stats.of('app').samples >= 3, { what: 'first results', timeoutMs: 30_000 });
  return { sidecar, base: `http://127.0.0.1:${port}` };
}

/** every console message of type error/warning, page errors, failed requests and HTTP errors */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return problems;
}

const rowState = (page: Page, check: string) =>
  page.locator(`tr[data-check="${check}"]`).evaluate((row) => ({ status: row.getAttribute('data-status'), label: row.querySelector('.badge')?.textContent?.trim(), cls: row.querySelector('.badge')?.className }));

describe('status page in headless Chromium', () => {
  test('shows every check with its state, refreshes by itself after a dependency fails, no console errors', async () => {
    appStatus = 200;
    const { sidecar, base } = await startSidecar('always');
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems = watch(page);
    const response = await page.goto(`${base}/?refresh=1`, { waitUntil: 'load' });
    assert.equal(response?.status(), 200);
    assert.match(response?.headers()['content-security-policy'] ?? '', /script-src 'self'/);

    const order = () => page.locator('tr[data-check]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-check')));
    assert.deepEqual(await order(), ['search', 'app', 'cache'], 'by severity (the DOWN one first), then name');
    assert.deepEqual(await rowState(page, 'app'), { status: 'UP', label: '✓ UP', cls: 'badge s-up' });
    assert.deepEqual(await rowState(page, 'cache'), { status: 'UP', label: '✓ UP', cls: 'badge s-up' });
    assert.deepEqual(await rowState(page, 'search'), { status: 'DOWN', label: '✗ DOWN', cls: 'badge s-down' });
    assert.equal(await page.locator('[data-overall]').getAttribute('data-overall'), 'DEGRADED', 'a non-critical check down: DEGRADED');
    assert.equal(await page.locator('tr[data-check="app"] svg.spark polyline').count(), 1, 'a latency sparkline');
    assert.match((await page.locator('tr[data-check="search"] .message').textContent()) ?? '', /connection refused/);
    // colours are real CSS (served from the package), not defaults
    assert.equal(await page.locator('tr[data-check="search"] .badge').evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(207, 34, 46)');
    await page.screenshot({ path: join(OUTPUT, 'status-page.png'), fullPage: true });

    // the dependency breaks: the page shows it without a reload
    appStatus = 500;
    await page.waitForSelector('tr[data-check="app"][data-status="DOWN"]', { timeout: 60_000 });
    assert.deepEqual(await rowState(page, 'app'), { status: 'DOWN', label: '✗ DOWN', cls: 'badge s-down' });
    assert.deepEqual(await order(), ['app', 'search', 'cache'], 'the refreshed rows re-sorted: both DOWN first, by name');
    assert.match((await page.locator('tr[data-check="app"] .message').textContent()) ?? '', /status 500/);
    await page.waitForSelector('li.incident.open:has-text("app")', { timeout: 60_000 });
    assert.equal(await page.locator('[data-overall]').getAttribute('data-overall'), 'DOWN');
    assert.match(await page.title(), /^DOWN — checkout health$/);
    assert.equal(sidecar.store.get('app')?.status, 'DOWN');
    await page.screenshot({ path: join(OUTPUT, 'status-page-down.png'), fullPage: true });

    // readable on a phone: rows become cards, no horizontal scrolling
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no horizontal scroll on a phone (overflow ${overflow}px)`);
    await page.screenshot({ path: join(OUTPUT, 'status-page-phone.png'), fullPage: true });

    assert.deepEqual(problems, []);
    assert.ok(statSync(join(OUTPUT, 'status-page-down.png')).size > 10_000);
    await page.close();
    appStatus = 200;
  });

  test('with showDetails: when-authorized an anonymous viewer sees names and states only', async () => {
    appStatus = 200;
    const { base } = await startSidecar('when-authorized');
    const page = await browser.newPage();
    const problems = watch(page);
    await page.goto(`${base}/?refresh=1`);
    assert.deepEqual(await rowState(page, 'search'), { status: 'DOWN', label: '✗ DOWN', cls: 'badge s-down' });
    assert.deepEqual(await page.locator('thead th').allTextContents(), ['Check', 'State']);
    const text = (await page.locator('body').textContent()) ?? '';
    assert.ok(!/refused|ms\b|Incidents/.test(text), 'no messages, latencies or incidents');
    assert.match(text, /Details \(latency, messages, incidents\) are shown only to requests with an API key \(server\.showDetails: when-authorized\)\./);
    assert.equal(await page.locator('svg.spark').count(), 0);
    // a refresh keeps it that way: wait for the page's own refresh to be applied (its "Updated" stamp, to the
    // second, moves: the refresh comes at least a second later), then look again
    const stamp = await page.locator('#updated').textContent();
    await page.waitForFunction((before) => document.getElementById('updated')?.textContent !== before, stamp, { timeout: 60_000 });
    assert.deepEqual(await rowState(page, 'search'), { status: 'DOWN', label: '✗ DOWN', cls: 'badge s-down' });
    assert.equal(await page.locator('svg.spark').count(), 0);
    assert.deepEqual(problems, []);
    await page.close();

    // the detail endpoints want a key
    const stats = await fetch(`${base}/health/stats`);
    assert.equal(stats.status, 401);
    const withKey = await fetch(`${base}/health/stats`, { headers: { 'x-api-key': KEY } });
    assert.equal(withKey.status, 200);
    assert.deepEqual(Object.keys(((await withKey.json()) as { checks: object }).checks), ['app', 'cache', 'search']);
    assert.equal((await fetch(`${base}/health/incidents`)).status, 401);
    assert.equal((await fetch(`${base}/?refresh=0`)).status, 400);
  });
});
