/** Start the COMPILED sidecar (`node dist/cli.js run --config <tmpfile>`) for benches. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopChild, taskset, sleep } from './proc.mjs';
import { REPO_DIR } from './result.mjs';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** One GET; resolves { status, body } or rejects on a socket error / timeout. */
export function httpGet(url, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Poll `url` until it answers with `status` (any status when null). */
export async function waitHttp(url, { status = 200, timeoutMs = 20_000, intervalMs = 50, child } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`process exited (${child.exitCode}) while waiting for ${url}`);
    try {
      const r = await httpGet(url, 1000);
      if (status === null || r.status === status) return r;
      last = `${r.status} ${r.body.slice(0, 300)}`;
    } catch (err) {
      last = err.message;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${url} (${status ?? 'any'}): last ${last}`);
}

/**
 * Write `configYaml` to a temp file (every `${PORT}` replaced by a free port unless
 * `port` given) and run the compiled CLI on it. Waits for `readyPath` (default
 * '/readyz') to answer 200; `readyPath: null` waits for /livez instead.
 * `cpu` pins it with taskset; `cli` runs another entry (scripts/bundle.mjs output). Output goes to a log file in the temp dir
 * (`logFile`), printed if start fails.
 */
export async function spawnSidecar(configYaml, { env = {}, cpu, readyPath = '/readyz', timeoutMs = 20_000, port, nodeArgs = [], cli = join(REPO_DIR, 'dist', 'cli.js') } = {}) {
  if (!existsSync(cli)) throw new Error('dist/cli.js missing: run `npm run build` first');
  const p = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'bench-sidecar-'));
  const configFile = join(dir, 'sidecar.yaml');
  writeFileSync(configFile, configYaml.replaceAll('${PORT}', String(p)));
  const logFile = join(dir, 'sidecar.log');
  const { openSync, closeSync, readFileSync } = await import('node:fs');
  const fd = openSync(logFile, 'a');
  const [cmd, argv] = taskset(cpu, process.execPath, [...nodeArgs, cli, 'run', '--config', configFile]);
  const child = spawn(cmd, argv, { cwd: REPO_DIR, stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  closeSync(fd);
  const url = `http://127.0.0.1:${p}`;
  const stop = async () => {
    await stopChild(child, 'SIGTERM', 10_000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitHttp(url + (readyPath ?? '/livez'), { status: 200, timeoutMs, child });
  } catch (err) {
    let log = '';
    try {
      log = readFileSync(logFile, 'utf8').slice(-4000);
    } catch {}
    await stop();
    throw new Error(`${err.message}\n--- sidecar log ---\n${log}`);
  }
  return { pid: child.pid, port: p, url, child, configFile, logFile, stop };
}
