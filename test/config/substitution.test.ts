/**
 * `${…}` substitution: environment, defaults, files, the $${ escape, typed
 * plain scalars, no YAML injection from values, checks skipped for an unset
 * URL variable, and defaults merged into each check key by key.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/probes/registry';
import { makeCa } from '../helpers/certs';
import type { SidecarConfig } from '../../src/config/types';
import type { AnyCheckConfig } from '../../src/probes/registry';
import { ConfigError } from '../../src/errors';

function load(text: string, env: NodeJS.ProcessEnv = {}): SidecarConfig<AnyCheckConfig> {
  return parseConfig(text, 'test.yaml', { env });
}

function problems(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    load(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail('config loaded without error');
}

const urlOf = (check: AnyCheckConfig) => ('url' in check ? check.url : '');
const tcp = (name: string, url: string, extra = '') => `  - name: ${name}\n    kind: tcp\n    url: ${url}\n${extra}`;

describe('environment substitution', () => {
  it('${VAR} takes the variable; ${VAR:-default} the default when it is unset or empty', () => {
    const text = 'server:\n  host: ${HOST}\n  drainDelay: ${DRAIN:-3s}\nlog:\n  level: ${LEVEL:-warn}\n';
    let config = load(text, { HOST: '127.0.0.2', LEVEL: 'debug' });
    assert.deepEqual([config.server.host, config.server.drainDelay, config.log.level], ['127.0.0.2', 3000, 'debug']);
    config = load(text, { HOST: '127.0.0.3', DRAIN: '', LEVEL: '' });
    assert.deepEqual([config.server.host, config.server.drainDelay, config.log.level], ['127.0.0.3', 3000, 'warn']);
    config = load(text, { HOST: '::1', DRAIN: '250ms' });
    assert.deepEqual([config.server.host, config.server.drainDelay, config.log.level], ['::1', 250, 'warn']);
  });

  it('substitutes inside a longer value and several references in one value', () => {
    const config = load(`checks:\n${tcp('svc', 'tcp://${HOST:-127.0.0.1}:${PORT}')}`, { PORT: '6000' });
    assert.equal(urlOf(config.checks[0]!), 'tcp://127.0.0.1:6000');
  });

  it('works inside flow mappings and sequences, where { and } are YAML indicators', () => {
    const text = 'defaults: { retry: { attempts: ${ATTEMPTS:-3}, backoff: { max: ${MAX} } } }\nserver: { host: ${HOST:-127.0.0.1}, auth: { keys: [{ name: ops, key: ${KEY} }] } }\n';
    const config = load(text, { MAX: '7s', KEY: 'flow-key-0123456789' });
    assert.deepEqual([config.defaults.retry.attempts, config.defaults.retry.backoff.max, config.server.host], [3, 7000, '127.0.0.1']);
    assert.deepEqual(config.server.auth.keys.map((k) => k.key), ['flow-key-0123456789']);
    // positions stay exact: the unset variable is reported where it is written
    assert.equal(problems(text, { MAX: '7s' }), 'test.yaml:2:70 server.auth.keys[0].key: environment variable KEY is not set and has no default');
  });

  it('an empty variable without a default counts as unset', () => {
    assert.equal(problems('server:\n  host: ${HOST}\n', { HOST: '' }), 'test.yaml:2:9 server.host: environment variable HOST is not set and has no default');
  });

  it('$${ is a literal ${ and is never substituted', () => {
    const config = load(
      'checks:\n  - name: app\n    kind: http\n    url: http://127.0.0.1:8080/\n    body: "$${NOT_A_VAR} and ${X}"\n    headers: { X-Template: $${ALSO_NOT} }\n',
      { X: 'x', NOT_A_VAR: 'wrong', ALSO_NOT: 'wrong' },
    );
    const check = config.checks[0]!;
    assert.equal(check.kind, 'http');
    if (check.kind !== 'http') return;
    assert.equal(check.body, '${NOT_A_VAR} and x');
    assert.deepEqual(check.headers, { 'X-Template': '${ALSO_NOT}' });
  });
});

describe('typed substitution of plain scalars', () => {
  it('port: ${PORT:-9464} is the number 9464 (default) or the variable as a number', () => {
    assert.equal(load('server:\n  port: ${PORT:-9464}\n').server.port, 9464);
    assert.equal(load('server:\n  port: ${PORT:-9464}\n', { PORT: '8080' }).server.port, 8080);
    assert.equal(load('server:\n  port: ${PORT}\n', { PORT: '0' }).server.port, 0);
  });

  it('a quoted "${PORT}" stays a string, so the schema rejects it as a port', () => {
    assert.equal(problems('server:\n  port: "${PORT}"\n', { PORT: '8080' }), 'test.yaml:2:9 server.port: must be a number; the value comes from PORT');
    assert.equal(problems("server:\n  port: '${PORT:-9464}'\n"), 'test.yaml:2:9 server.port: must be a number');
  });

  it('booleans are typed too; anything else stays exactly the text of the variable', () => {
    const text = 'telemetry:\n  traces: { enabled: ${TRACES} }\nserver:\n  host: ${HOST}\n';
    const config = load(text, { TRACES: 'false', HOST: 'null' });
    assert.equal(config.telemetry.traces.enabled, false);
    assert.equal(config.server.host, 'null');
    // a value that is a number where a string is wanted is an error, as if written plainly
    assert.equal(problems(text, { TRACES: 'true', HOST: '1234' }), 'test.yaml:4:9 server.host: must be a string; the value comes from HOST');
  });

  it('a value with YAML syntax is never parsed as YAML structure (no injection)', () => {
    const injected = {
      HOST: 'a: b\n- c',
      KEY: '{ name: admin, key: 0123456789abcdef0123 }',
      TOKEN: "'quoted' # not a comment: [1, 2]",
      URL: 'http://127.0.0.1:8080/\nbody: injected',
    };
    const text = [
      'server:',
      '  host: ${HOST}',
      '  auth:',
      '    keys:',
      '      - name: ops',
      '        key: ${KEY}',
      'checks:',
      '  - name: app',
      '    kind: http',
      '    url: http://127.0.0.1:8080/',
      '    headers:',
      '      Authorization: ${TOKEN}',
      '',
    ].join('\n');
    const config = load(text, injected);
    assert.equal(config.server.host, injected.HOST);
    assert.deepEqual(config.server.auth.keys.map((k) => [k.name, k.key]), [['ops', injected.KEY]]);
    const check = config.checks[0]!;
    assert.ok(check.kind === 'http');
    assert.deepEqual(check.headers, { Authorization: injected.TOKEN });
    assert.equal(check.body, undefined);
    // a URL with an injected line stays one (invalid) string value
    assert.equal(problems(`checks:\n${tcp('svc', '${URL}')}`, injected), 'test.yaml:4:10 checks[0].url: scheme must be tcp, not http; the value comes from URL');
  });
});

describe('${file:…} references', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'config-subst-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the file, drops one trailing newline, and marks the content secret', () => {
    const keyFile = join(dir, 'admin-key');
    writeFileSync(keyFile, 'file-key-0123456789abcdef\n');
    const config = parseConfig(`server:\n  auth:\n    keys:\n      - name: ops\n        key: \${file:${keyFile}}\n`, 'test.yaml', { env: {} });
    assert.equal(readFileSync(keyFile, 'utf8'), 'file-key-0123456789abcdef\n');
    assert.equal(config.server.auth.keys[0]!.key, 'file-key-0123456789abcdef');
    assert.ok(config.secrets.includes('file-key-0123456789abcdef'));
  });

  it('keeps multi-line content (PEM) verbatim inside a value', async () => {
    const pem = join(dir, 'ca.pem');
    // a real certificate: PEM in tls.* must parse (config/schema.ts)
    const body = (await makeCa(1)).cert.trim();
    writeFileSync(pem, `${body}\n`);
    const config = load(`checks:\n  - name: app\n    kind: http\n    url: https://127.0.0.1:8443/\n    tls: { ca: "\${file:${pem}}" }\n`);
    const check = config.checks[0]!;
    assert.ok(check.kind === 'http');
    assert.equal(check.tls?.ca, body);
  });

  it('an unreadable file is an error at the value naming it', () => {
    const missing = join(dir, 'missing');
    assert.equal(
      problems(`server:\n  host: \${file:${missing}}\n`),
      `test.yaml:2:9 server.host: cannot read ${missing} (\${file:…} reference): no such file (ENOENT)`,
    );
    assert.equal(problems(`server:\n  host: \${file:${dir}}\n`), `test.yaml:2:9 server.host: cannot read ${dir} (\${file:…} reference): is a directory (EISDIR)`);
  });
});

describe('checks whose URL variable is unset', () => {
  const text = `checks:\n${tcp('self', 'tcp://127.0.0.1:9464')}  - name: cache\n    kind: redis\n    url: \${REDIS_URL}\n  - name: db\n    kind: postgres\n    url: \${DATABASE_URL}\n`;

  it('are skipped, and listed in `skipped` with the reason', () => {
    const config = load(text, { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test' });
    assert.deepEqual(config.checks.map((c) => c.name), ['self', 'db']);
    assert.deepEqual(config.skipped, [{ name: 'cache', reason: 'environment variable REDIS_URL is not set (url)' }]);
  });

  it('are kept when the variable is set', () => {
    const config = load(text, { REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test' });
    assert.deepEqual(config.checks.map((c) => c.name), ['self', 'cache', 'db']);
    assert.deepEqual(config.skipped, []);
  });

  it('are still validated, so a typo in one is found on a machine without the variable', () => {
    assert.equal(problems(`${text}    timout: 1s\n`), 'test.yaml:11:5 checks[2].timout: unknown key (did you mean "timeout"?)');
  });

  it('an unset variable elsewhere in a check (not its url) is an error, not a skip', () => {
    const http = 'checks:\n  - name: app\n    kind: http\n    url: http://127.0.0.1:8080/\n    headers: { Authorization: "Bearer ${TOKEN}" }\n';
    assert.equal(problems(http), 'test.yaml:5:31 checks[0].headers.Authorization: environment variable TOKEN is not set and has no default');
  });

  it('the shipped config/sidecar.yaml loads with no variables set: only the self check runs', () => {
    const shipped = readFileSync(join(__dirname, '..', '..', 'config', 'sidecar.yaml'), 'utf8');
    const config = load(shipped);
    assert.equal(config.server.port, 9464);
    assert.deepEqual(config.checks.map((c) => [c.name, c.kind, urlOf(c)]), [['self', 'tcp', 'tcp://127.0.0.1:9464']]);
    assert.deepEqual(config.skipped, [
      { name: 'app', reason: 'environment variable APP_URL is not set (url)' },
      { name: 'cache', reason: 'environment variable REDIS_URL is not set (url)' },
      { name: 'db', reason: 'environment variable DATABASE_URL is not set (url)' },
    ]);
    const full = load(shipped, { PORT: '9999', APP_URL: 'http://127.0.0.1:8080/', REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test' });
    assert.deepEqual(full.checks.map((c) => [c.name, urlOf(c)]), [
      ['self', 'tcp://127.0.0.1:9999'],
      ['app', 'http://127.0.0.1:8080/'],
      ['cache', 'redis://127.0.0.1:6379'],
      ['db', 'postgres://postgres@127.0.0.1:5432/test'],
    ]);
    assert.equal(full.server.port, 9999);
    assert.deepEqual(full.skipped, []);
  });
});

describe('defaults merged per check', () => {
  const text = [
    'defaults:',
    '  interval: 20s',
    '  timeout: 3s',
    '  retry: { attempts: 3, backoff: { initial: 200ms, max: 2s }, jitter: false }',
    '  breaker: { failures: 4, halfOpenAfter: 40s }',
    '  thresholds: { failure: 2, success: 2 }',
    'checks:',
    tcp('plain', 'tcp://127.0.0.1:1').trimEnd(),
    tcp('tuned', 'tcp://127.0.0.1:2', '    timeout: 1s\n    retry: { attempts: 1, backoff: { max: 5s } }\n    breaker: { failures: 9 }\n    thresholds: { success: 5 }\n').trimEnd(),
    '',
  ].join('\n');
  const policy = (c: SidecarConfig['checks'][number]) => ({ interval: c.interval, timeout: c.timeout, retry: c.retry, breaker: c.breaker, thresholds: c.thresholds });

  it('a check without policy keys takes every field from defaults', () => {
    const config = load(text);
    assert.deepEqual(policy(config.checks[0]!), {
      interval: 20_000,
      timeout: 3000,
      retry: { attempts: 3, backoff: { initial: 200, max: 2000 }, jitter: false },
      breaker: { failures: 4, halfOpenAfter: 40_000 },
      thresholds: { failure: 2, success: 2 },
    });
  });

  it('a check overriding one field of retry/breaker/thresholds keeps the others from defaults', () => {
    const config = load(text);
    assert.deepEqual(policy(config.checks[1]!), {
      interval: 20_000,
      timeout: 1000,
      retry: { attempts: 1, backoff: { initial: 200, max: 5000 }, jitter: false },
      breaker: { failures: 9, halfOpenAfter: 40_000 },
      thresholds: { failure: 2, success: 5 },
    });
  });

  it('with no defaults section at all, the documented defaults apply', () => {
    const config = load(`checks:\n${tcp('a', 'tcp://127.0.0.1:1')}`);
    assert.deepEqual(policy(config.checks[0]!), {
      interval: 10_000,
      timeout: 2000,
      retry: { attempts: 2, backoff: { initial: 100, max: 1000 }, jitter: true },
      breaker: { failures: 5, halfOpenAfter: 30_000 },
      thresholds: { failure: 3, success: 1 },
    });
    assert.deepEqual(
      { groups: config.checks[0]!.groups, critical: config.checks[0]!.critical },
      { groups: ['ready'], critical: true },
    );
  });
});
