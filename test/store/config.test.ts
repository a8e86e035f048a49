/**
 * Issue 20: `store` is a config key of the monitor modes only. In a sidecar
 * config (no `mode: monitor`, no `shard`) it is refused with file, line,
 * column and key, as every config error; with `mode: monitor` or a `shard`
 * block it loads, and a password in store.postgres is a secret.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/probes/registry';
import { CLI, ensureBuilt } from '../helpers/paths';

test('store in a sidecar config: exit 2 with FILE:LINE:COL store: and why', () => {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'store-config-'));
  try {
    const file = join(dir, 'sidecar.yaml');
    writeFileSync(file, 'checks: []\nstore:\n  postgres: postgres://db:5432/monitors\n');
    const run = spawnSync(process.execPath, [CLI, 'validate', '--config', file], { encoding: 'utf8' });
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:3 store: needs mode: monitor \\(or a shard block\\): a pod sidecar takes its checks from the file only`));
    writeFileSync(file, 'mode: monitor\nstore:\n  postgres: postgres://db:5432/monitors\n');
    const ok = spawnSync(process.execPath, [CLI, 'validate', '--config', file], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a shard block counts as a monitor mode; the store password is a secret; bad store values are config errors', () => {
  const sharded = parseConfig('shard: { index: 0, count: 2 }\nstore: { postgres: "postgres://app:s3cret-store-pw@db/m" }\n', 'x.yaml', { env: {} });
  assert.equal(sharded.store?.postgres, 'postgres://app:s3cret-store-pw@db/m');
  assert.ok(sharded.secrets.includes('s3cret-store-pw'));
  assert.throws(() => parseConfig('mode: monitor\nstore: { postgres: "mysql://db/m", maxMonitors: 0 }\n', 'x.yaml', { env: {} }), (err: Error) => {
    assert.match(err.message, /x\.yaml:2:\d+ store\.postgres: scheme must be postgres or postgresql, not mysql/);
    assert.match(err.message, /store\.maxMonitors/);
    return true;
  });
  assert.throws(() => parseConfig('server: { auth: { keys: [{ name: a, key: "0123456789abcdef", scopes: [root] }] } }\n', 'x.yaml', { env: {} }), /server\.auth\.keys\[0\]\.scopes\[0\]/);
});
