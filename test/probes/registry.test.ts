/**
 * The probe registry: every kind is one module listed once, and a kind's driver
 * loads only when a check of that kind is created.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CHECK_KINDS, PROBE_KINDS, parseConfig } from '../../src/probes/registry';
import { ensureBuilt, ROOT } from '../helpers/paths';

/** Modules of the heavy drivers loaded in a fresh process after `script` ran (dist build). */
function driversLoadedBy(script: string): string[] {
  ensureBuilt();
  const program = `
    const dist = ${JSON.stringify(join(ROOT, 'dist'))};
    const { parseConfig, createProbe } = require(dist + '/probes/registry');
    const { Redactor } = require(dist + '/redact');
    const { Sidecar } = require(dist + '/sidecar');
    const probe = (yaml) => {
      const config = parseConfig('checks:\\n  - name: c\\n    ' + yaml.replace(/\\n/g, '\\n    ') + '\\n', 'test.yaml', { env: {} });
      new Sidecar(config, require('pino')({ level: 'silent' }));
      return createProbe(config.checks[0], { redactor: new Redactor() });
    };
    ${script};
    const drivers = new Set();
    for (const file of Object.keys(require.cache)) {
      const m = /node_modules\\/(ioredis|pg|@grpc\\/grpc-js|grpc-health-check)\\//.exec(file);
      if (m) drivers.add(m[1]);
    }
    process.stdout.write(JSON.stringify([...drivers].sort()));
    process.exit(0);
  `;
  const child = spawnSync(process.execPath, ['-e', program], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout) as string[];
}

describe('probe registry', () => {
  test('CHECK_KINDS lists each kind module once, named as its schema names it', () => {
    assert.deepEqual([...CHECK_KINDS], ['http', 'tcp', 'redis', 'postgres', 'grpc', 'dns']);
    for (const kind of PROBE_KINDS) assert.equal(kind.schema.shape.kind.value, kind.kind);
  });

  test("each kind's placeholder passes its own schema: a check whose target needs an unset variable is skipped, not an error", () => {
    const checks = PROBE_KINDS.map((k) => `  - name: c-${k.kind}\n    kind: ${k.kind}\n    ${k.targetField}: \${UNSET_TARGET}\n`).join('');
    const config = parseConfig(`checks:\n${checks}`, 'test.yaml', { env: {} });
    assert.deepEqual(config.checks, []);
    assert.deepEqual(
      config.skipped,
      PROBE_KINDS.map((k) => ({ name: `c-${k.kind}`, reason: `environment variable UNSET_TARGET is not set (${k.targetField})` })),
    );
  });

  test('a config with only http, tcp and dns checks loads no database or gRPC driver', () => {
    const loaded = driversLoadedBy(`
      probe('kind: http\\nurl: http://127.0.0.1:1/');
      probe('kind: tcp\\nurl: tcp://127.0.0.1:1');
      probe('kind: dns\\nhost: example.com');
    `);
    assert.deepEqual(loaded, []);
  });

  test('each driver loads with the first check of its kind, and only its own', () => {
    assert.deepEqual(driversLoadedBy(`probe('kind: redis\\nurl: redis://127.0.0.1:1')`), ['ioredis']);
    assert.deepEqual(driversLoadedBy(`probe('kind: postgres\\nurl: postgres://127.0.0.1:1/x')`), ['pg']);
    assert.deepEqual(driversLoadedBy(`probe('kind: grpc\\nurl: grpc://127.0.0.1:1')`), ['@grpc/grpc-js', 'grpc-health-check']);
  });
});
