/** Helpers private to the probe-cost / memory / startup / endpoint / many-checks / detection benches. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_DIR } from './result.mjs';

/** The node flags of the image's ENTRYPOINT (e.g. --max-semi-space-size=2): benches run the sidecar as shipped. */
export function shippedNodeFlags() {
  const m = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(join(REPO_DIR, 'Dockerfile'), 'utf8'));
  return m ? JSON.parse(m[1]).filter((w) => w.startsWith('--')) : [];
}

/** The environment the image's ENV lines set (NODE_ENV, MALLOC_ARENA_MAX): benches run the sidecar as shipped. */
export function shippedEnv() {
  const env = {};
  for (const m of readFileSync(join(REPO_DIR, 'Dockerfile'), 'utf8').matchAll(/^ENV (.+)$/gm)) {
    for (const pair of m[1].trim().split(/\s+/)) {
      const [k, ...v] = pair.split('=');
      env[k] = v.join('=');
    }
  }
  return env;
}

/** p-th percentile (0..100) of xs, nearest-rank. */
export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/**
 * Start bench/lib/probe-rawloop.mjs (the raw baseline: N paced loops with kept connections).
 * Resolves once connected: { pid, start(), count() → {count, errors}, stop() }.
 */
export async function startRawLoop(kind, url, loops, intervalMs, { nodeArgs = [] } = {}) {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [...nodeArgs, join(REPO_DIR, 'bench/lib/probe-rawloop.mjs'), kind, url, String(loops), String(intervalMs)], {
    cwd: REPO_DIR,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  child.stdout.setEncoding('utf8');
  let buf = '';
  const waiting = [];
  child.stdout.on('data', (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiting.shift()?.resolve(JSON.parse(line));
    }
  });
  child.once('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`raw loop exited (${code})`));
  });
  const next = () => new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  const ask = (cmd) => {
    const p = next();
    child.stdin.write(cmd + '\n');
    return p;
  };
  await next(); // ready
  return {
    pid: child.pid,
    start: () => ask('start'),
    count: () => ask('count'),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => (clearTimeout(t), resolve()));
        child.stdin.write('stop\n');
      }),
  };
}

/** Sum of a Prometheus counter over its series, optionally only series whose labels contain `filter`. */
export function promSum(text, name, filter = '') {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(name + '{') || line.startsWith(name + ' '))) continue;
    if (filter && !line.includes(filter)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * The shipped form: scripts/bundle.mjs's bundle, built once into a temp directory of the
 * repository (beside package.json and node_modules, as `bundle/` is) and removed at exit.
 * Returns { dir, cli, info } where info is the bundler's --json line ({ bytes, files, external, … }).
 */
export function buildShippedBundle() {
  const dir = mkdtempSync(join(REPO_DIR, '.bench-bundle-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync(process.execPath, [join(REPO_DIR, 'scripts', 'bundle.mjs'), '--outdir', dir, '--json'], { cwd: REPO_DIR, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/bundle.mjs failed: ${r.stderr}`);
  return { dir, cli: join(dir, 'cli.js'), info: JSON.parse(r.stdout.trim().split('\n').pop()) };
}
