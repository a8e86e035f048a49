/**
 * `health-sidecar schema` and the shipped examples: the compiled CLI prints the
 * same JSON Schema the loader's schema object produces; every example under
 * config/examples (and the copies under deploy/) is valid for the loader AND
 * for the JSON Schema — raw, as an editor sees the file, and after `${…}`
 * substitution, as the loader sees it. Broken variants fail both, so the
 * validator is shown to bite.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { parseConfig } from '../../src/probes/registry';
import { configJsonSchema } from '../../src/probes/registry';
import { run } from '../deploy/support';
import { validateJsonSchema, type Schema } from './json-schema';
import { ROOT } from '../helpers/paths';

const EXAMPLES = join(ROOT, 'config/examples');
const exampleFiles = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort();
const ENV = { REDIS_URL: 'redis://:pw-redis@redis:6379/0', DATABASE_URL: 'postgres://app:pw-db@db:5432/app', HEALTH_ADMIN_KEY: 'admin-key-0123456789abcdef' };
/** `${VAR}` / `${VAR:-default}` resolved from ENV or the default, as the loader does */
const substitute = (text: string) => text.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (m, name: string, def?: string) => ENV[name as keyof typeof ENV] ?? def ?? m);
const schema = configJsonSchema() as Schema;

describe('health-sidecar schema', () => {
  test('the compiled CLI prints the JSON Schema generated from the loader schema', async () => {
    const result = await run(process.execPath, [join(ROOT, 'dist/cli.js'), 'schema']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), JSON.parse(JSON.stringify(schema)));
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  });

  test('the shipped examples: minimal, standalone monitor, web app with Redis and PostgreSQL', () => {
    assert.deepEqual(exampleFiles, ['minimal.yaml', 'standalone-monitor.yaml', 'web-app.yaml']);
  });

  for (const file of exampleFiles) {
    test(`config/examples/${file}: valid for the loader and for the JSON Schema (raw and substituted)`, () => {
      const text = readFileSync(join(EXAMPLES, file), 'utf8');
      const config = parseConfig(text, file, { env: ENV });
      assert.deepEqual(config.skipped, [], 'no check skipped with the documented variables set');
      assert.ok(config.checks.length >= 1);
      assert.deepEqual(validateJsonSchema(schema, parse(text)), [], 'raw file (editor view)');
      assert.deepEqual(validateJsonSchema(schema, parse(substitute(text))), [], 'after substitution (loader view)');
    });
  }

  test('the deploy copies are the examples (kustomize cannot read outside its directory)', () => {
    assert.equal(readFileSync(join(ROOT, 'deploy/kustomize/base/sidecar.yaml'), 'utf8'), readFileSync(join(EXAMPLES, 'web-app.yaml'), 'utf8'));
    assert.equal(readFileSync(join(ROOT, 'deploy/kustomize/overlays/standalone-monitor/sidecar.yaml'), 'utf8'), readFileSync(join(EXAMPLES, 'standalone-monitor.yaml'), 'utf8'));
  });

  test('broken variants of an example fail the JSON Schema and the loader alike', () => {
    const base = parse(substitute(readFileSync(join(EXAMPLES, 'web-app.yaml'), 'utf8'))) as { server: Record<string, unknown>; checks: Record<string, unknown>[] };
    const cases: [string, (c: typeof base) => void, string[]][] = [
      ['unknown key in a check', (c) => (c.checks[0]!.timout = '1s'), ['checks[0].timout: unknown key']],
      ['port out of range', (c) => (c.server.port = 70000), ['server.port: above 65535']],
      ['bad enum', (c) => (c.server.showDetails = 'sometimes'), ['server.showDetails: must be one of ["never","when-authorized","always"]']],
      ['unknown check kind', (c) => (c.checks[1]!.kind = 'memcached'), ['checks[1].kind: must be']],
      ['duration without unit', (c) => (c.checks[0]!.interval = '10'), ['checks[0].interval: does not match']],
      ['bad check name', (c) => (c.checks[2]!.name = 'DB'), ['checks[2].name: does not match']],
    ];
    for (const [what, mutate, expected] of cases) {
      const copy = structuredClone(base);
      mutate(copy);
      const errors = validateJsonSchema(schema, copy);
      assert.ok(errors.length > 0, `${what}: the JSON Schema rejects it`);
      for (const e of expected) assert.ok(errors.some((got) => got.startsWith(e)), `${what}: expected "${e}" in ${JSON.stringify(errors)}`);
      assert.throws(() => parseConfig(JSON.stringify(copy), 'mutated.json', { env: ENV }), `${what}: the loader rejects it too`);
    }
  });

  test('the validator refuses keywords it does not implement (so it cannot silently pass)', () => {
    assert.throws(() => validateJsonSchema({ type: 'object', dependentRequired: {} }, {}), /dependentRequired/);
  });
});
