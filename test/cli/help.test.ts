/**
 * The compiled CLI explains itself (issue 19): --help for the whole and per
 * command (also `run --help`, `help CMD`), --version, usage errors (exit 2, what
 * was wrong, where to read more), the example of every command's help run for
 * real, the exit codes 0/1/2 as docs/deploy.md lists them (a port in use:
 * test/process/startup-failures.test.ts), LOG_LEVEL in any
 * case (an invalid one names the variable and the accepted values), debug
 * logging one line per probe run, and config warnings printed by `validate`
 * and logged by `run`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { logLines, run, startChild, type Child } from '../deploy/support';
import { CLI, ROOT } from '../helpers/paths';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** variables the configs read: the children must not inherit them from whoever runs the tests */
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(PORT|HOST|DRAIN_DELAY|LOG_LEVEL|APP_URL|APP_READY_URL|REDIS_URL|DATABASE_URL|HEALTH_ADMIN_KEY|OTEL_.*)$/.test(name)));
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => run(process.execPath, [CLI, ...args], { env: { ...ENV, ...env } });
const COMMANDS = ['run', 'validate', 'check', 'schema'];
const LEVELS = 'fatal, error, warn, info, debug, trace, silent';

let dir: string;
let app: TestHttpServer;
const children: Child[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cli-help-'));
  app = await startHttpServer((_req, res) => res.end('ok'));
});
after(async () => {
  for (const child of children) await child.kill('SIGKILL');
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

/** a `run` child; resolves once it listens */
async function start(args: string[], env: NodeJS.ProcessEnv): Promise<Child> {
  const child = startChild(process.execPath, [CLI, ...args], { env: { ...ENV, ...env } });
  children.push(child);
  await waitFor(() => logLines(child.stdout()).some((l) => String(l.msg).startsWith('listening on')) || child.proc.exitCode !== null, { timeoutMs: 20_000, what: 'listening' });
  assert.equal(child.proc.exitCode, null, child.stdout() + child.stderr());
  return child;
}

describe('health-sidecar --help, --version', () => {
  it('the main help: every command with what it does, the options, LOG_LEVEL, the exit codes, an example; the same for --help, -h, help and no arguments', async () => {
    const answers = await Promise.all([['--help'], ['-h'], ['help'], []].map((args) => cli(args)));
    for (const answer of answers) assert.deepEqual(answer, answers[0]);
    const { code, stdout, stderr } = answers[0]!;
    assert.deepEqual({ code, stderr }, { code: 0, stderr: '' });
    assert.match(stdout, new RegExp(`^health-sidecar ${VERSION.replaceAll('.', '\\.')} — `));
    const commands = stdout.slice(stdout.indexOf('\ncommands:\n') + 11, stdout.indexOf('\n\noptions:'));
    assert.deepEqual(commands.split('\n').map((l) => l.trim().split(/\s+/)[0]), [...COMMANDS, 'help']);
    for (const line of commands.split('\n')) assert.match(line, /^ {2}\w+ {3,}\S.{20,}$/, `says what it does: ${line}`);
    assert.match(stdout, /\n {2}-V, --version +print the version\n/);
    assert.match(stdout, new RegExp(`\\n {2}LOG_LEVEL +${LEVELS} \\(any case\\)`));
    // a new user learns here that the standard OTEL_* variables send every signal to a Collector
    assert.match(stdout, /OpenTelemetry metrics, traces and logs\./);
    assert.match(stdout, /\n {2}OTEL_\* +the standard OpenTelemetry variables: OTEL_EXPORTER_OTLP_ENDPOINT .* \(docs\/telemetry\.md\)\n/);
    assert.match(stdout, /\nexample:\n {2}health-sidecar validate --config config\/sidecar\.yaml && health-sidecar run --config config\/sidecar\.yaml\n/);
  });

  it('--version and -V print the package version', async () => {
    for (const flag of ['--version', '-V']) assert.deepEqual(await cli([flag]), { code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  for (const command of COMMANDS) {
    it(`${command} --help (also -h, help ${command}): usage, what it does, options, exit codes, example`, async () => {
      const answers = await Promise.all([[command, '--help'], [command, '-h'], ['help', command], [command, '--config', 'x.yaml', '--help']].map((args) => cli(args)));
      for (const answer of answers.slice(0, command === 'schema' ? 3 : 4)) assert.deepEqual(answer, answers[0]);
      const { code, stdout, stderr } = answers[0]!;
      assert.deepEqual({ code, stderr }, { code: 0, stderr: '' });
      const sections = stdout.split('\n\n');
      assert.match(sections[0]!, new RegExp(`^health-sidecar ${command} — \\S`));
      assert.match(sections[1]!, new RegExp(`^usage: health-sidecar ${command}`));
      const options = sections.find((s) => s.startsWith('options:\n'))!;
      assert.ok(options, 'an options section');
      assert.match(options, /\n {2}-h, --help +show this help$/);
      if (command !== 'schema') assert.match(options, /\n {2}-c, --config FILE +the config file, required/);
      if (command === 'check') assert.match(options, /\n {6}--json +print JSON.*\n {6}--check NAME +run only this check \(repeatable\)/);
      const exits = sections.find((s) => s.startsWith('exit codes:\n'))!;
      assert.match(exits, /\n {2}0 {2}\S/);
      assert.match(sections.find((s) => s.startsWith('example:\n'))!, new RegExp(`\\n {2}(\\w+=\\w+ )?health-sidecar ${command}`));
    });
  }

  it('usage errors: exit 2, nothing on stdout, what was wrong and where to read more', async () => {
    const cases: [string[], string][] = [
      [['bogus'], 'health-sidecar: unknown command "bogus"\nusage: health-sidecar <command> [options]  (commands: run, validate, check, schema)\nRun "health-sidecar --help" for the options and an example.\n'],
      [['--verbose'], 'health-sidecar: unknown option --verbose\nusage: health-sidecar <command> [options]  (commands: run, validate, check, schema)\nRun "health-sidecar --help" for the options and an example.\n'],
      [['run'], 'health-sidecar run: --config FILE is required\nusage: health-sidecar run --config FILE [--probe-port PORT]\nRun "health-sidecar run --help" for the options and an example.\n'],
      [['run', '--config', 'a.yaml', '--port', '1'], 'health-sidecar run: unknown option --port\nusage: health-sidecar run --config FILE [--probe-port PORT]\nRun "health-sidecar run --help" for the options and an example.\n'],
      [['validate', 'a.yaml'], 'health-sidecar validate: unexpected argument "a.yaml" (the config file goes after --config)\nusage: health-sidecar validate --config FILE\nRun "health-sidecar validate --help" for the options and an example.\n'],
      [['check', '--config', 'a.yaml', '--check'], 'health-sidecar check: option --check needs a value\nusage: health-sidecar check --config FILE [--json] [--check NAME]...\nRun "health-sidecar check --help" for the options and an example.\n'],
      [['check', '--config', 'a.yaml', '--json=yes'], 'health-sidecar check: option --json takes no value\nusage: health-sidecar check --config FILE [--json] [--check NAME]...\nRun "health-sidecar check --help" for the options and an example.\n'],
      [['help', 'nope'], 'health-sidecar: unknown command "nope"\nusage: health-sidecar <command> [options]  (commands: run, validate, check, schema)\nRun "health-sidecar --help" for the options and an example.\n'],
    ];
    for (const [args, stderr] of cases) assert.deepEqual(await cli(args), { code: 2, stdout: '', stderr }, args.join(' '));
  });

  it('the exit codes of the main help are the table in docs/deploy.md', async () => {
    const { stdout } = await cli(['--help']);
    const help = stdout.slice(stdout.indexOf('exit codes:\n') + 12).split('\n\n')[0]!.split('\n').map((l) => /^ {2}(\d) {2}(.+)$/.exec(l)!.slice(1));
    assert.deepEqual(help.map(([c]) => c), ['0', '1', '2']);
    const doc = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8');
    const section = doc.slice(doc.indexOf('\n### Exit codes\n'));
    assert.ok(section.length > 20, 'docs/deploy.md has a "### Exit codes" section');
    const rows = [...section.matchAll(/^\| `(\d)` \| (.+) \|$/gm)].map((m) => [m[1]!, m[2]!.replaceAll('`', '')]);
    assert.deepEqual(rows, help);
  });
});

describe('the examples of the help, run as written', () => {
  it('validate: the web-app sample is valid and has no warning', async () => {
    const { stdout } = await cli(['validate', '--help']);
    const example = /\nexample:\n {2}health-sidecar (.+)\n/.exec(stdout)![1]!.split(' ');
    const result = await cli(example, { HEALTH_ADMIN_KEY: 'admin-key-0123456789abcdef' });
    assert.deepEqual(result, { code: 0, stdout: 'config/examples/web-app.yaml: ok: 2 check(s), 2 skipped (cache, db), port 9464\n', stderr: '' });
  });

  it('check: the minimal sample against a live app, as JSON', async () => {
    const { stdout } = await cli(['check', '--help']);
    const example = /\nexample:\n {2}health-sidecar (.+)\n/.exec(stdout)![1]!.split(' ');
    const result = await cli(example, { APP_URL: `${app.url}/healthz` });
    assert.equal(result.code, 0, result.stderr);
    const [only] = JSON.parse(result.stdout) as { name: string; ok: boolean; attempts: number }[];
    assert.deepEqual({ name: only!.name, ok: only!.ok, attempts: only!.attempts }, { name: 'app', ok: true, attempts: 1 });
  });

  it('schema: JSON Schema on stdout', async () => {
    const { stdout } = await cli(['schema', '--help']);
    assert.match(stdout, /\nexample:\n {2}health-sidecar schema > sidecar\.schema\.json\n/);
    const result = await cli(['schema']);
    assert.equal(result.code, 0);
    assert.equal((JSON.parse(result.stdout) as { title: string }).title, 'otel-health-sidecar configuration');
  });

  it('run: LOG_LEVEL=debug logs one line per probe run (check, outcome, duration, attempts); SIGTERM exits 0', async () => {
    const { stdout } = await cli(['run', '--help']);
    const example = /\nexample:\n {2}LOG_LEVEL=debug health-sidecar (.+)\n/.exec(stdout)![1]!.split(' ');
    const port = await freePort();
    const child = await start(example, { LOG_LEVEL: 'debug', PORT: String(port), DRAIN_DELAY: '0s', HOST: '127.0.0.1' });
    // the shipped config's one check (self, every 10 s) runs at start
    const line = (await waitFor(() => logLines(child.stdout()).find((l) => l.level === 'debug' && l.check === 'self'), { timeoutMs: 15_000, what: 'a debug line for the self check' }))!;
    assert.equal(line.msg, `check self run: success in ${line.durationMs} ms, 1 attempt(s)`);
    assert.deepEqual({ outcome: line.outcome, attempts: line.attempts, status: line.status }, { outcome: 'success', attempts: 1, status: 'UP' });
    assert.ok(Number.isInteger(line.durationMs) && (line.durationMs as number) >= 0);
    assert.equal(logLines(child.stdout()).filter((l) => l.level === 'debug' && l.check === 'self').length, 1, 'one line per run');
    child.proc.kill('SIGTERM');
    assert.deepEqual(await child.exited, { code: 0, signal: null });
  });
});

describe('LOG_LEVEL', () => {
  it('any case is accepted (DEBUG, Warn)', async () => {
    for (const level of ['DEBUG', 'Warn']) {
      assert.deepEqual(await cli(['validate', '--config', 'config/examples/minimal.yaml'], { LOG_LEVEL: level }), { code: 0, stdout: 'config/examples/minimal.yaml: ok: 1 check(s), port 9464\n', stderr: '' });
    }
  });

  it('an invalid one: exit 2 naming LOG_LEVEL and the accepted values; run never starts', async () => {
    const message = `LOG_LEVEL="verbose" is not a log level; accepted (any case): ${LEVELS}\n`;
    assert.deepEqual(await cli(['validate', '--config', 'config/examples/minimal.yaml'], { LOG_LEVEL: 'verbose' }), { code: 2, stdout: '', stderr: message });
    assert.deepEqual(await cli(['run', '--config', 'config/examples/minimal.yaml'], { LOG_LEVEL: 'verbose' }), { code: 2, stdout: '', stderr: message });
    // a config that reads ${LOG_LEVEL} names the variable in its problem line
    const shipped = await cli(['validate', '--config', 'config/sidecar.yaml'], { LOG_LEVEL: 'verbose' });
    assert.equal(shipped.code, 2);
    assert.match(shipped.stderr, new RegExp(`^config/sidecar\\.yaml:\\d+:\\d+ log\\.level: must be one of ${LEVELS} \\(any case\\); the value comes from LOG_LEVEL\\n`));
  });
});

describe('config warnings and exit codes of run', () => {
  it('validate prints each warning on stderr and still exits 0', async () => {
    const file = join(dir, 'warn.yaml');
    writeFileSync(file, `server:\n  showDetails: when-authorized\nchecks:\n  - { name: web, kind: http, url: "${app.url}/", groups: [live, startup] }\n`);
    assert.deepEqual(await cli(['validate', '--config', file]), {
      code: 0,
      stdout: `${file}: ok: 1 check(s), port 9464, 2 warning(s)\n`,
      stderr: [
        `warning: ${file}:2:3 server.showDetails: when-authorized, but server.auth.keys is empty: no request can see details (messages, latencies, /health/stats, /health/incidents), as with "never"; add a key or write "never"`,
        `warning: ${file}:3:1 checks: /readyz can never fail: no check is in group ready, so a readinessProbe on it passes whenever the sidecar answers`,
        '',
      ].join('\n'),
    });
  });

  it('run logs each warning at start; a second signal during the drain exits 1', async () => {
    const file = join(dir, 'empty.yaml');
    writeFileSync(file, `server: { port: ${await freePort()}, host: 127.0.0.1, drainDelay: 30s }\n`);
    const child = await start(['run', '--config', file], {});
    const warnings = logLines(child.stdout()).filter((l) => l.level === 'warn');
    assert.deepEqual(warnings.map((l) => [l.msg, l.setting]), [[`config warning: ${file} checks: no check to run (the config defines none): /livez, /readyz and /startupz always answer 200, whatever the app and its dependencies do`, 'checks']]);
    child.proc.kill('SIGTERM');
    await waitFor(() => logLines(child.stdout()).some((l) => String(l.msg).startsWith('shutting down')), { what: 'draining' });
    child.proc.kill('SIGTERM');
    assert.deepEqual(await child.exited, { code: 1, signal: null });
    assert.ok(logLines(child.stdout()).some((l) => l.msg === 'second signal: exiting now'));
  });
});
