/**
 * Shared by the telemetry tests: the compiled CLI as a child process (the
 * instrumentations' require hooks only work in a fresh process that imports
 * telemetry/sdk first, exactly as production does), its JSON log lines, and a
 * Prometheus text parser that keeps every family, type and label set.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { CLI, ROOT } from '../helpers/paths';
import { freePort } from '../helpers/servers';

/** The environment of a child: ours minus every OTEL_*, K8S_* and config variable, plus `extra`. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(OTEL_|K8S_|LOG_LEVEL$|REDIS_URL$|DATABASE_URL$|APP_URL$)/.test(name)));
  return { ...base, ...extra };
}

/** how long stop() lets the process exit by itself before it is killed (a hang, not slowness) */
export const STOP_HANG_GUARD_MS = 60_000;

export interface CliProcess {
  child: ChildProcess;
  port: number;
  /** every stdout/stderr line so far */
  lines: string[];
  /** stdout lines parsed as JSON (non-JSON lines skipped) */
  records(): Record<string, unknown>[];
  /** sends SIGTERM and resolves with the exit code and how long the exit took (SIGKILL after STOP_HANG_GUARD_MS: signal 'SIGKILL') */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** SIGKILL if still running (after()) */
  kill(): void;
  dir: string;
}

/** Write the YAML to a temp dir and run `dist/cli.js run --config` on it; resolves once it listens. */
export async function startCli(yaml: string, env: Record<string, string>, options: { startTimeoutMs?: number; cpu?: number; args?: string[] } = {}): Promise<CliProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'telemetry-test-'));
  const file = join(dir, 'sidecar.yaml');
  writeFileSync(file, yaml);
  // `cpu`: pinned to that CPU (taskset execs node, so the pid is the sidecar's)
  // `args`: more of run's options after the config file (e.g. --probe-port)
  const run = [CLI, 'run', '--config', file, ...(options.args ?? [])];
  const [command, args] = options.cpu === undefined ? [process.execPath, run] : ['taskset', ['-c', String(options.cpu), process.execPath, ...run]];
  const child = spawn(command, args, { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let pending = '';
  const onData = (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const parts = pending.split('\n');
    pending = parts.pop()!;
    lines.push(...parts.filter((l) => l.length > 0));
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const records = () =>
    lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  let port: number | undefined;
  while (port === undefined) {
    const listening = records().find((r) => typeof r.msg === 'string' && r.msg.startsWith('listening on'));
    if (listening) port = listening.port as number;
    else if (child.exitCode !== null) throw new Error(`CLI exited with ${child.exitCode} before listening:\n${lines.join('\n')}`);
    else if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`CLI did not listen in time:\n${lines.join('\n')}`);
    } else await new Promise((r) => setTimeout(r, 25));
  }
  return {
    child,
    port,
    lines,
    records,
    dir,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const started = performance.now();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      // a hang guard, far above any bound of the sidecar's own: a process still there is killed, and
      // the test sees signal SIGKILL instead of waiting forever
      const guard = setTimeout(() => child.kill('SIGKILL'), STOP_HANG_GUARD_MS);
      const result = await exited;
      clearTimeout(guard);
      rmSync(dir, { recursive: true, force: true });
      return { ...result, ms: performance.now() - started };
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- Prometheus text --------------------------------------------------------

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;
  let match: RegExpExecArray | null;
  let consumed = 0;
  while ((match = re.exec(text)) !== null) {
    assert.ok(!(match[1]! in labels), `label ${match[1]} repeated in {${text}}`);
    labels[match[1]!] = match[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    consumed = re.lastIndex;
  }
  assert.equal(consumed, text.length, `unparsable labels: {${text}}`);
  return labels;
}

/** Parse the 0.0.4 text format strictly: every sample must belong to the family declared before it. */
export function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const help = /^# HELP (\S+) (.*)$/.exec(line);
    if (help) {
      assert.ok(!families.has(help[1]!), `family ${help[1]} declared twice`);
      current = { name: help[1]!, type: 'untyped', help: help[2]!, samples: [] };
      families.set(current.name, current);
      continue;
    }
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      assert.equal(type[1], current?.name, `TYPE for ${type[1]} without its HELP`);
      current!.type = type[2]!;
      continue;
    }
    assert.ok(!line.startsWith('#'), `unexpected comment line: ${line}`);
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(sample, `unparsable sample line: ${line}`);
    assert.ok(current, `sample before any family: ${line}`);
    const name = sample[1]!;
    const suffixes = current.type === 'histogram' ? ['_bucket', '_sum', '_count'] : [''];
    assert.ok(suffixes.some((s) => name === current!.name + s), `sample ${name} does not belong to family ${current.name} (${current.type})`);
    const value = sample[3] === '+Inf' ? Infinity : sample[3] === '-Inf' ? -Infinity : Number(sample[3]);
    assert.ok(!Number.isNaN(value) || sample[3] === 'NaN', `bad value in ${line}`);
    current.samples.push({ name, labels: parseLabels(sample[2] ?? ''), value });
  }
  return families;
}

/** The sorted set of label names used by a family's samples (le excluded), as one string per distinct set. */
export function labelSets(family: Family): string[] {
  const sets = new Set(family.samples.map((s) => Object.keys(s.labels).filter((k) => k !== 'le').sort().join(',')));
  return [...sets].sort();
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export const PROMETHEUS = '/usr/bin/prometheus';

export interface ScrapingPrometheus {
  readonly port: number;
  /** null while it runs */
  exitCode(): number | null;
  /** everything it wrote to stdout and stderr */
  log(): string;
  /** SIGTERM, wait for the exit, remove its data directory */
  stop(): Promise<void>;
}

/**
 * A real Prometheus (private data directory, free port) scraping
 * 127.0.0.1:<targetPort>/metrics every second; `extraArgs` such as
 * `--enable-feature=exemplar-storage`; `bearer`: scrape with `Authorization: Bearer <key>`.
 */
export async function startScrapingPrometheus(targetPort: number, extraArgs: readonly string[] = [], options: { bearer?: string } = {}): Promise<ScrapingPrometheus> {
  const dir = tempDir('prometheus-');
  const port = await freePort();
  const config = join(dir.path, 'prometheus.yml');
  writeFileSync(
    config,
    `global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: health-sidecar
    metrics_path: /metrics
${options.bearer ? `    authorization: { credentials: "${options.bearer}" }\n` : ''}    static_configs:
      - targets: ['127.0.0.1:${targetPort}']
`,
  );
  const child: ChildProcess = spawn(
    PROMETHEUS,
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir.path, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, ...extraArgs, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  return {
    port,
    exitCode: () => child.exitCode,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
      dir.remove();
    },
  };
}
