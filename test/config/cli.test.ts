/**
 * The compiled CLI (`node dist/cli.js`): `validate` and `schema`, exit codes
 * and exact output. dist/ is rebuilt first when any file under src/ is newer.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../../src/probes/registry';
import { ConfigError } from '../../src/errors';
import { CLI, ROOT } from '../helpers/paths';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'config');
/** variables the configs under test read: the child must not inherit them from whoever runs the tests */
const CONFIG_VARS = /^(PORT|HOST|DRAIN_DELAY|LOG_LEVEL|APP_URL|REDIS_URL|DATABASE_URL|CONFIG_TEST_.*)$/;
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => !CONFIG_VARS.test(name)));

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = ENV): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function expectedProblems(file: string): string {
  try {
    loadConfigFile(file, { env: {} });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return `${err.message}\n${file}: ${err.problems.length} problem(s); config not loaded\n`;
  }
  assert.fail(`${file} is valid`);
}

describe('health-sidecar CLI: validate and schema', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'config-cli-'));
    let built = 0;
    try {
      built = statSync(CLI).mtimeMs;
    } catch {
      /* not built yet */
    }
    if (built < newestMtime(join(ROOT, 'src'))) {
      const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
      assert.equal(tsc.status, 0, `tsc failed:\n${tsc.stdout}${tsc.stderr}`);
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('validate on a good config: exit 0 and a one-line summary naming skipped checks', async () => {
    const file = join(FIXTURES, 'valid-full.yaml');
    assert.deepEqual(await cli(['validate', '--config', file]), { code: 0, stdout: `${file}: ok: 4 check(s), 1 skipped (payments), port 9464\n`, stderr: '' });
    // the variable-typed port follows the environment
    assert.deepEqual(await cli(['validate', '--config', file], { ...ENV, CONFIG_TEST_PORT: '9999' }), {
      code: 0,
      stdout: `${file}: ok: 4 check(s), 1 skipped (payments), port 9999\n`,
      stderr: '',
    });
  });

  it('validate on the shipped config/sidecar.yaml with no variables set: the self check, three skipped', async () => {
    assert.deepEqual(await cli(['validate', '--config', 'config/sidecar.yaml']), {
      code: 0,
      stdout: 'config/sidecar.yaml: ok: 1 check(s), 3 skipped (app, cache, db), port 9464\n',
      stderr: '',
    });
  });

  it('validate on the multi-error fixture: exit 2, every problem line on stderr, nothing on stdout', async () => {
    const file = join(FIXTURES, 'invalid-multiple.yaml');
    const run = await cli(['validate', '--config', file]);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    const lines = run.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 10);
    assert.equal(lines[0], `${file}:4:9 server.port: must be at most 65535`);
    assert.equal(lines[8], `${file}:22:10 log.level: environment variable CONFIG_TEST_UNSET_LEVEL is not set and has no default`);
    assert.equal(lines[9], `${file}: 9 problem(s); config not loaded`);
    assert.equal(run.stderr, expectedProblems(file));
  });

  it('validate on one fixture per stage (YAML, duplicate key, substitution, file, schema): exit 2 and exactly the loader\'s problem lines', async () => {
    // every fixture's text is asserted in-process by invalid-fixtures.test.ts; here one per stage proves the CLI prints it unchanged
    const fixtures = ['invalid-yaml-syntax.yaml', 'invalid-duplicate-key.yaml', 'invalid-unset-env.yaml', 'invalid-unreadable-file.yaml', 'invalid-unknown-kind.yaml', 'invalid-timeout-exceeds-interval.yaml'];
    const results: [string, Run][] = [];
    for (let i = 0; i < fixtures.length; i += 3) {
      const batch = fixtures.slice(i, i + 3);
      results.push(...(await Promise.all(batch.map(async (f) => [f, await cli(['validate', '--config', join(FIXTURES, f)])] as [string, Run]))));
    }
    for (const [fixture, run] of results) {
      const file = join(FIXTURES, fixture);
      assert.deepEqual(run, { code: 2, stdout: '', stderr: expectedProblems(file) }, fixture);
    }
  });

  it('validate on a missing file: exit 2 with a clear message', async () => {
    const file = join(dir, 'nope.yaml');
    assert.deepEqual(await cli(['validate', '--config', file]), {
      code: 2,
      stdout: '',
      stderr: `${file}: cannot read config file: no such file (ENOENT)\n${file}: 1 problem(s); config not loaded\n`,
    });
  });

  it('validate without --config: exit 2 with usage', async () => {
    const run = await cli(['validate']);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.equal(run.stderr, 'health-sidecar validate: --config FILE is required\nusage: health-sidecar validate --config FILE\nRun "health-sidecar validate --help" for the options and an example.\n');
  });

  it('validate output of an invalid config never contains its secrets', async () => {
    const file = join(dir, 'secret.yaml');
    writeFileSync(file, 'checks:\n  - name: cache\n    kind: http\n    url: redis://:CANARY-PASSWORD-123@127.0.0.1:1/0\n    headers: { Authorization: "Bearer CANARY-TOKEN-456" }\n    tiemout: 1s\n');
    const run = await cli(['validate', '--config', file]);
    assert.deepEqual(run, {
      code: 2,
      stdout: '',
      stderr: [
        `${file}:4:10 checks[0].url: scheme must be http or https, not redis`,
        `${file}:6:5 checks[0].tiemout: unknown key (did you mean "timeout"?)`,
        `${file}: 2 problem(s); config not loaded`,
        '',
      ].join('\n'),
    });
    assert.ok(!run.stderr.includes('CANARY'));
  });

  it('schema prints a JSON Schema: strict at the top, covering the shipped config and every check kind', async () => {
    const run = await cli(['schema']);
    assert.equal(run.code, 0);
    assert.equal(run.stderr, '');
    const schema = JSON.parse(run.stdout) as JsonSchema;
    assert.equal(schema.type, 'object');
    assert.equal(schema.additionalProperties, false);
    assert.equal(schema.title, 'otel-health-sidecar configuration');

    const shipped = parseYaml(readFileSync(join(ROOT, 'config', 'sidecar.yaml'), 'utf8')) as Record<string, unknown>;
    const topKeys = Object.keys(schema.properties ?? {});
    for (const key of Object.keys(shipped)) assert.ok(topKeys.includes(key), `top-level key ${key} missing from schema.properties`);

    const variants = schema.properties!.checks!.items!.oneOf ?? schema.properties!.checks!.items!.anyOf ?? [];
    const kinds = variants.map((v) => v.properties?.kind?.const ?? v.properties?.kind?.enum?.[0]);
    for (const kind of ['http', 'tcp', 'redis', 'postgres']) assert.ok(kinds.includes(kind), `kind ${kind} missing: ${kinds.join(', ')}`);
    for (const variant of variants) assert.equal(variant.additionalProperties, false, `check kind ${String(variant.properties?.kind?.const)} is not strict`);

    // durations carry a pattern editors can check: a unit is required, a ${…} reference is let through
    const interval = (schema.properties!.defaults as JsonSchema & { properties: Record<string, { pattern?: string; type?: string }> }).properties.interval!;
    assert.equal(interval.type, 'string');
    const pattern = new RegExp(interval.pattern!);
    assert.deepEqual(
      ['250ms', '1m30s', '${INTERVAL:-10s}', '10', '5 seconds', '-1s'].map((d) => [d, pattern.test(d)]),
      [['250ms', true], ['1m30s', true], ['${INTERVAL:-10s}', true], ['10', false], ['5 seconds', false], ['-1s', false]],
    );

    // every key the shipped config uses, at any depth, is a property the schema declares there
    assert.deepEqual(unknownKeys(schema, shipped, ''), []);
    // and a typo is caught by the same walk, so the walk can fail
    assert.deepEqual(unknownKeys(schema, { server: { prot: 1 }, checks: [{ kind: 'tcp', url: 'tcp://a:1', name: 'x', timout: '1s' }] }, ''), ['server.prot', 'checks[0].timout']);
  });
});

interface JsonSchema {
  type?: string;
  title?: string;
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
}

/** keys in value that the JSON Schema does not allow at their place (picks the variant of a union by `kind`) */
function unknownKeys(schema: JsonSchema, value: unknown, path: string): string[] {
  const variants = schema.oneOf ?? schema.anyOf;
  if (variants) {
    const kind = value && typeof value === 'object' ? (value as { kind?: unknown }).kind : undefined;
    const match = variants.find((v) => v.properties?.kind?.const === kind || v.properties?.kind?.enum?.includes(kind)) ?? variants.find((v) => v.type === typeof value || (v.type === 'object' && typeof value === 'object'));
    return match ? unknownKeys(match, value, path) : [];
  }
  if (Array.isArray(value)) return schema.items ? value.flatMap((item, i) => unknownKeys(schema.items!, item, `${path}[${i}]`)) : [];
  if (!value || typeof value !== 'object' || !schema.properties) return [];
  const out: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    const where = path ? `${path}.${key}` : key;
    const sub = schema.properties[key];
    if (sub) out.push(...unknownKeys(sub, child, where));
    else if (schema.additionalProperties === false) out.push(where);
  }
  return out;
}
