/**
 * Config warnings (src/config/warnings.ts), through the real loader: each rule
 * with its exact text and position, the cases that must NOT warn, and every
 * shipped sample config (config/, the overlays' ConfigMaps) warning-free.
 * Also: log.level in any case, and a bad level that came from ${LOG_LEVEL}
 * names the variable.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile, parseConfig } from '../../src/probes/registry';
import { ConfigError, formatProblem } from '../../src/errors';

const ROOT = join(__dirname, '..', '..');
const warnings = (text: string, env: NodeJS.ProcessEnv = {}) => parseConfig(text, 'w.yaml', { env }).warnings.map((w) => formatProblem('w.yaml', w));
const KEY = 'key-0123456789abcdef';
const tcp = (name: string, extra = '') => `  - { name: ${name}, kind: tcp, url: "tcp://127.0.0.1:1"${extra} }\n`;

describe('config warnings', () => {
  it('no check to run: an empty config, every check skipped, a shard that owns none', () => {
    const always = '/livez, /readyz and /startupz always answer 200, whatever the app and its dependencies do';
    assert.deepEqual(warnings(''), [`w.yaml checks: no check to run (the config defines none): ${always}`]);
    assert.deepEqual(warnings('checks: []\n'), [`w.yaml:1:1 checks: no check to run (the config defines none): ${always}`]);
    assert.deepEqual(warnings(`checks:\n  - { name: a, kind: http, url: "\${A_URL}" }\n  - { name: b, kind: redis, url: "\${B_URL}" }\n`), [
      `w.yaml:1:1 checks: no check to run (all 2 were skipped for an unset variable (a, b)): ${always}`,
    ]);
    // two checks over three shards: one shard owns none
    const sharded = [0, 1, 2].map((index) => warnings(`shard: { index: ${index}, count: 3 }\nchecks:\n${tcp('a')}${tcp('b')}`));
    const empty = sharded.filter((w) => w.length > 0);
    assert.ok(empty.length >= 1, 'some shard owns none');
    for (const w of empty) assert.match(w[0]!, /^w\.yaml:2:1 checks: no check to run \(shard \d of 3 owns none of the 2 check\(s\)\): /);
  });

  it('showDetails: when-authorized written out with no key; not with a key, not when it is only the default, not with never/always', () => {
    const check = `checks:\n${tcp('a', ', groups: [ready]')}`;
    assert.deepEqual(warnings(`server:\n  showDetails: when-authorized\n${check}`), [
      'w.yaml:2:3 server.showDetails: when-authorized, but server.auth.keys is empty: no request can see details (messages, latencies, /health/stats, /health/incidents), as with "never"; add a key or write "never"',
    ]);
    assert.deepEqual(warnings(`server:\n  showDetails: when-authorized\n  auth: { keys: [ { name: ops, key: ${KEY} } ] }\n${check}`), []);
    assert.deepEqual(warnings(check), [], 'the default needs no key: nobody asked for details');
    for (const mode of ['never', 'always']) assert.deepEqual(warnings(`server: { showDetails: ${mode} }\n${check}`), []);
  });

  it('a probe path no check can fail: /readyz with no critical check; /livez, /startupz whose checks are all non-critical', () => {
    assert.deepEqual(warnings(`checks:\n${tcp('a', ', groups: [live, startup]')}`), [
      'w.yaml:1:1 checks: /readyz can never fail: no check is in group ready, so a readinessProbe on it passes whenever the sidecar answers',
    ]);
    assert.deepEqual(warnings(`checks:\n${tcp('a', ', groups: [live, ready, startup], critical: false')}${tcp('b', ', groups: [live], critical: false')}`), [
      'w.yaml:1:1 checks: /livez can never fail: every check in group live (a, b) is critical: false, and a non-critical check that is DOWN only makes the group DEGRADED (200)',
      'w.yaml:1:1 checks: /readyz can never fail: every check in group ready (a) is critical: false, and a non-critical check that is DOWN only makes the group DEGRADED (200)',
      'w.yaml:1:1 checks: /startupz can never fail: every check in group startup (a) is critical: false, and a non-critical check that is DOWN only makes the group DEGRADED (200)',
    ]);
    // one critical check is enough; an empty live or startup group is the intended default ("alive once the sidecar answers")
    assert.deepEqual(warnings(`checks:\n${tcp('a', ', critical: false')}${tcp('b')}`), []);
    assert.deepEqual(warnings(`checks:\n${tcp('a', ', groups: [live, ready, startup]')}`), []);
  });

  it('warnings never stop a config: the config is loaded with its checks', () => {
    const config = parseConfig(`server: { showDetails: when-authorized }\nchecks:\n${tcp('a', ', critical: false')}`, 'w.yaml', { env: {} });
    assert.deepEqual(config.checks.map((c) => c.name), ['a']);
    assert.equal(config.warnings.length, 2);
  });

  it('every shipped config loads without a warning', () => {
    const env = { HEALTH_ADMIN_KEY: KEY, APP_URL: 'http://127.0.0.1:9898/healthz', REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test', SHARD_COUNT: '3' };
    const files = [
      'config/sidecar.yaml',
      ...readdirSync(join(ROOT, 'config/examples')).map((f) => `config/examples/${f}`),
      'deploy/kustomize/base/sidecar.yaml',
      'deploy/kustomize/overlays/standalone-monitor/sidecar.yaml',
      'deploy/kustomize/overlays/sharded-monitor/sidecar.yaml',
    ];
    for (const file of files) {
      for (const vars of [{}, env]) {
        let config;
        try {
          config = loadConfigFile(join(ROOT, file), { env: { ...vars, K8S_POD_NAME: 'monitor-0' } });
        } catch (err) {
          if (err instanceof ConfigError && Object.keys(vars).length === 0) continue; // needs its variables
          throw err;
        }
        assert.deepEqual(config.warnings.map((w) => formatProblem(file, w)), [], `${file} with ${Object.keys(vars).length ? 'its variables' : 'no variables'}`);
      }
    }
  });
});

describe('log.level', () => {
  it('any case, as written or from ${LOG_LEVEL}', () => {
    assert.equal(parseConfig('log: { level: DEBUG }\n', 'l.yaml', { env: {} }).log.level, 'debug');
    assert.equal(parseConfig('log:\n  level: ${LOG_LEVEL:-info}\n', 'l.yaml', { env: { LOG_LEVEL: 'Warn' } }).log.level, 'warn');
  });

  it('a level that is none: the accepted values, and the variable it came from', () => {
    assert.throws(() => parseConfig('log:\n  level: ${LOG_LEVEL:-info}\n', 'l.yaml', { env: { LOG_LEVEL: 'verbose' } }), {
      message: 'l.yaml:2:10 log.level: must be one of fatal, error, warn, info, debug, trace, silent (any case); the value comes from LOG_LEVEL',
    });
    assert.throws(() => parseConfig('log: { level: loud }\n', 'l.yaml', { env: {} }), {
      message: 'l.yaml:1:15 log.level: must be one of fatal, error, warn, info, debug, trace, silent (any case)',
    });
  });
});
