/**
 * Footprint (issue 22): a sidecar loads a driver only when a check of its kind is
 * configured. The whole compiled CLI (`node dist/cli.js run`, as production runs it)
 * with a preload that writes require.cache and process.moduleLoadList when the
 * process exits: an HTTP + TCP config evaluates no file of ioredis, pg, @grpc/grpc-js
 * or grpc-health-check; the same process with a Redis and a PostgreSQL check does load
 * theirs (the control that proves the observation sees a loaded driver). node's own
 * DNS resolver module (`dns`, `internal/dns/promises`) loads with a dns check only,
 * and no file of @opentelemetry/semantic-conventions' incubating entry is evaluated.
 * pg is loaded through requirePg (src/probes/pg-driver.ts), which keeps node's fetch
 * implementation (undici) unloaded on Node 20; a plain require('pg') is the control.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { get } from '../helpers/http';
import { CLI, ensureBuilt, ROOT } from '../helpers/paths';
import { DATABASE_URL, freePort, REDIS_URL, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';

const PRELOAD = join(ROOT, 'test', 'helpers', 'loaded-modules.cjs');
const DRIVER = /node_modules\/(ioredis|pg|@grpc\/grpc-js|grpc-health-check)\//;

interface Loaded {
  files: string[];
  builtins: string[];
}

/** the drivers whose files a loaded-modules report lists */
function drivers(loaded: Loaded): string[] {
  const found = new Set<string>();
  for (const file of loaded.files) {
    const m = DRIVER.exec(file);
    if (m) found.add(m[1]!);
  }
  return [...found].sort();
}

/** Runs `program` in a fresh node process (node -e) and parses the JSON it writes to stdout. */
function evalJson<T>(program: string): T {
  const child = spawnSync(process.execPath, ['-e', program], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout) as T;
}

/** Runs the compiled CLI on `checks` until /readyz is 200, stops it with SIGTERM, returns what it had loaded. */
async function loadedByRun(checks: string): Promise<Loaded> {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'lazy-drivers-'));
  const port = await freePort();
  const file = join(dir, 'sidecar.yaml');
  const out = join(dir, 'loaded.json');
  writeFileSync(file, `server: { port: ${port}, host: 127.0.0.1, drainDelay: 0s }\nlog: { level: warn }\ndefaults: { interval: 10s, timeout: 2s }\nchecks:\n${checks}\n`);
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(OTEL_|K8S_)/.test(name)));
  const child = spawn(process.execPath, ['-r', PRELOAD, CLI, 'run', '--config', file], { cwd: ROOT, env: { ...env, LOADED_MODULES_OUT: out, OTEL_TRACES_EXPORTER: 'none' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`sidecar exited ${child.exitCode}: ${stderr}`);
        return (await get(port, '/readyz')).status === 200;
      },
      { what: '/readyz 200', timeoutMs: 60_000 },
    );
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    return JSON.parse(readFileSync(out, 'utf8')) as Loaded;
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('drivers load only with a check of their kind (whole process)', () => {
  let app: TestHttpServer;
  after(async () => app?.close());

  test('HTTP + TCP checks: no file of ioredis, pg, @grpc/grpc-js or grpc-health-check is evaluated', async () => {
    app = await startHttpServer((_req, res) => res.end('ok'));
    const loaded = await loadedByRun(`  - { name: app, kind: http, url: "${app.url}/", groups: [ready] }\n  - { name: port, kind: tcp, url: "tcp://127.0.0.1:${new URL(app.url).port}", groups: [ready] }`);
    assert.ok(loaded.files.some((f) => f.includes('/dist/probes/http.js')), 'the report lists the app’s own modules');
    assert.deepEqual(drivers(loaded), []);
    // semantic conventions: the stable entry only (what @opentelemetry/core loads itself), never the incubating set
    assert.deepEqual(
      loaded.files.filter((f) => /@opentelemetry\/semantic-conventions\/.*incubating/.test(f)),
      [],
    );
  });

  test('control: with a Redis and a PostgreSQL check the same observation sees ioredis and pg', async () => {
    const loaded = await loadedByRun(`  - { name: cache, kind: redis, url: "${REDIS_URL}", groups: [ready] }\n  - { name: db, kind: postgres, url: "${DATABASE_URL}", groups: [ready] }`);
    assert.deepEqual(drivers(loaded), ['ioredis', 'pg']);
    // pg is loaded through requirePg (src/probes/pg-driver.ts): node's fetch implementation stays unloaded
    assert.deepEqual(
      loaded.builtins.filter((m) => m.includes('undici')),
      [],
    );
  });
});

describe('pg without node\'s fetch implementation (src/probes/pg-driver.ts)', () => {
  /** in a fresh process: `load` (a statement), then undici's builtins and typeof navigator */
  function afterLoading(load: string): { undici: string[]; navigator: string } {
    ensureBuilt();
    const program = `
      ${load};
      process.stdout.write(JSON.stringify({ undici: process.moduleLoadList.filter((m) => m.includes('undici')), navigator: typeof globalThis.navigator }));
    `;
    return evalJson<{ undici: string[]; navigator: string }>(program);
  }
  const nodeMajor = Number(process.versions.node.split('.')[0]);

  test('requirePg() loads pg without undici and leaves no navigator behind', () => {
    const shim = afterLoading(`const pg = require(${JSON.stringify(join(ROOT, 'dist', 'probes', 'pg-driver'))}).requirePg(); if (typeof pg.Client !== 'function') throw new Error('no pg.Client')`);
    assert.deepEqual(shim.undici, []);
    // Node 20 has no navigator: the one defined for the require is gone again; Node >= 21 has its own
    assert.equal(shim.navigator, nodeMajor >= 21 ? 'object' : 'undefined');
  });

  test('control: a plain require("pg") on Node 20 does load undici (what requirePg avoids)', () => {
    const plain = afterLoading(`require('pg')`);
    if (nodeMajor >= 21) {
      // node defines navigator, pg reads it and never builds a Response: nothing to avoid
      assert.deepEqual(plain, { undici: [], navigator: 'object' });
    } else {
      assert.ok(plain.undici.length > 0, 'pg’s Cloudflare check loads undici on Node 20');
      assert.equal(plain.navigator, 'undefined');
    }
  });
});

describe('node:dns resolver loads with a dns check only', () => {
  /** builtins that are new after creating a probe for `yaml`, in a fresh process (dist build) */
  function builtinsAfter(yaml: string): string[] {
    ensureBuilt();
    const program = `
      const dist = ${JSON.stringify(join(ROOT, 'dist'))};
      const { parseConfig, createProbe } = require(dist + '/probes/registry');
      const { Redactor } = require(dist + '/redact');
      const { Sidecar } = require(dist + '/sidecar');
      const config = parseConfig(${JSON.stringify(`checks:\n  - name: c\n    ${yaml.replace(/\n/g, '\n    ')}\n`)}, 'test.yaml', { env: {} });
      new Sidecar(config, require('pino')({ level: 'silent' }));
      const before = new Set(process.moduleLoadList);
      createProbe(config.checks[0], { redactor: new Redactor() });
      process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13))));
      process.exit(0);
    `;
    return evalJson<string[]>(program);
  }

  test('an HTTP check loads no dns module; a dns check loads dns and its promises API', () => {
    const http = builtinsAfter('kind: http\nurl: http://127.0.0.1:1/');
    assert.deepEqual(
      http.filter((m) => /(^|\/)dns/.test(m)),
      [],
    );
    const dns = builtinsAfter('kind: dns\nhost: example.com');
    assert.ok(dns.includes('dns') && dns.includes('internal/dns/promises'), `dns check loaded: ${dns.join(', ')}`);
  });
});
