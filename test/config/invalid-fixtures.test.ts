/**
 * One invalid config per rule (blackbox_exporter style): each fixture in
 * test/fixtures/config/invalid-*.yaml is loaded and the WHOLE error text is
 * asserted, `FILE:LINE:COL path.to.key: problem`, one line per problem.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile, parseConfig } from '../../src/probes/registry';
import { CHECK_KINDS } from '../../src/probes/registry';
import { ConfigError } from '../../src/errors';

const DIR = join(__dirname, '..', 'fixtures', 'config');
const DURATION = 'must be a duration such as "250ms", "5s" or "1m"';
const BAD_REFERENCE = 'bad reference "${1BAD}": use ${VAR}, ${VAR:-default}, ${file:/path} or $${ for a literal ${';

/** fixture → the problems after `FILE:`, in order */
const EXPECTED: Record<string, string[]> = {
  'invalid-yaml-syntax.yaml': ['7:1: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'],
  'invalid-duplicate-key.yaml': ['3:3 server.port: duplicate key (first defined on line 2)'],
  'invalid-unknown-top-level-key.yaml': ['3:1 chekcs: unknown key (did you mean "checks"?)'],
  'invalid-unknown-check-key.yaml': ['5:5 checks[0].timout: unknown key (did you mean "timeout"?)'],
  'invalid-unknown-server-key.yaml': ['3:3 server.bind: unknown key'],
  'invalid-duration-words.yaml': [`2:12 defaults.timeout: ${DURATION}`],
  'invalid-duration-bare-number.yaml': ['2:13 defaults.interval: must be a duration with a unit, such as "10s" or "10ms" (a bare number is ambiguous)'],
  'invalid-interval-zero.yaml': ['5:15 checks[0].interval: must be greater than 0'],
  'invalid-interval-negative.yaml': ['5:15 checks[0].interval: must be greater than 0'],
  'invalid-timeout-exceeds-interval.yaml': ['6:14 checks[0].timeout: timeout (10s) must not exceed interval (5s)'],
  'invalid-port.yaml': ['2:9 server.port: must be at most 65535'],
  'invalid-check-name.yaml': ['2:11 checks[0].name: must match [a-z0-9][a-z0-9_-]* (lower case, digits, - and _)'],
  'invalid-reserved-check-name.yaml': ['2:11 checks[0].name: is reserved: /health/{live,ready,startup,system,stats,incidents} are endpoints of their own'],
  'invalid-duplicate-check-name.yaml': ['5:11 checks[1].name: duplicate check name "app" (first used by checks[0])'],
  'invalid-unknown-kind.yaml': [`3:11 checks[0].kind: must be one of ${CHECK_KINDS.join(', ')} (got "mysql")`],
  'invalid-missing-url.yaml': ['2:5 checks[0].url: is required'],
  'invalid-url-scheme.yaml': ['4:10 checks[0].url: scheme must be http or https, not redis'],
  'invalid-tcp-without-port.yaml': ['4:10 checks[0].url: must name a port: tcp://host:port'],
  'invalid-status-range.yaml': ['6:16 checks[0].expect.status[0]: must be a status code or range such as "200-299"'],
  'invalid-follow-redirects.yaml': [
    '5:22 checks[0].followRedirects: must be true, false, "same-origin", "any" or a list of host names',
    '9:42 checks[1].followRedirects[1]: must be a host name, host:port or *.domain',
  ],
  'invalid-body-regex.yaml': ['6:18 checks[0].expect.bodyRegex: must be a valid regular expression'],
  'invalid-show-details.yaml': ['2:16 server.showDetails: must be one of never, when-authorized, always (got "sometimes")'],
  'invalid-attempts-zero.yaml': ['3:15 defaults.retry.attempts: must be at least 1'],
  'invalid-unset-env.yaml': ['2:9 server.host: environment variable CONFIG_TEST_UNSET_HOST is not set and has no default'],
  'invalid-unreadable-file.yaml': ['5:14 server.auth.keys[0].key: cannot read /nonexistent/health-sidecar/admin-key (${file:…} reference): no such file (ENOENT)'],
  'invalid-reference-syntax.yaml': [`2:9 server.host: ${BAD_REFERENCE}`],
  'invalid-redis-tls-plaintext.yaml': ['6:7 checks[0].tls: TLS options need a rediss:// URL (redis:// is plaintext)'],
  'invalid-redis-sentinel-without-master.yaml': ['2:5 checks[0].masterName: is required with sentinels (the master group to ask for)'],
  'invalid-grpc-without-port.yaml': ['4:10 checks[0].url: must name a port: grpc://host:port'],
  'invalid-grpc-tls-plaintext.yaml': ['5:10 checks[0].tls: TLS options need a grpcs:// URL (grpc:// is plaintext)'],
  'invalid-grpc-url-scheme.yaml': ['4:10 checks[0].url: scheme must be grpc or grpcs, not http'],
  'invalid-dns-host.yaml': ['4:11 checks[0].host: must be a DNS name such as api.example.com'],
  'invalid-dns-record-type.yaml': ['5:17 checks[0].recordType: must be one of A, AAAA, CNAME, SRV, TXT (got "MX")'],
  'invalid-dns-resolver.yaml': [
    '5:16 checks[0].resolver[0]: must be an IP address with an optional port: 10.0.0.10, 10.0.0.10:53, [fd00::10]:53',
    '5:33 checks[0].resolver[1]: must be an IP address with an optional port: 10.0.0.10, 10.0.0.10:53, [fd00::10]:53',
  ],
  'invalid-dns-missing-host.yaml': ['2:5 checks[0].host: is required'],
  'invalid-postgres-sslmode.yaml': ['4:10 checks[0].url: ?sslmode=prefer is not supported: use disable, require, verify-ca, verify-full (prefer falls back to plaintext without telling; a check should know which it gets)'],
  'invalid-tls-material.yaml': [
    '6:11 checks[0].tls.ca: certificate 1 of 1 is not a valid certificate (PEM routines: bad base64 decode)',
    '7:13 checks[0].tls.cert: not a valid PEM certificate (asn1 encoding routines: wrong tag)',
    '8:12 checks[0].tls.key: not a valid PEM private key (DECODER routines: unsupported)',
  ],
  'invalid-server-paths.yaml': [
    '4:17 server.paths./health/v2: is under /health/, which the sidecar answers itself',
    '5:14 server.paths./ready/: must not end with / (every path is answered with and without a trailing slash: write /ready)',
    '6:15 server.paths./metrics: is a built-in endpoint already',
  ],
  'invalid-server-paths-target.yaml': ['3:13 server.paths./alive: must be one of livez, readyz, startupz, healthy, health, system, stats, incidents, status, metrics (got "liveness")'],
  'invalid-api-key-short.yaml': ['5:14 server.auth.keys[0].key: must be at least 16 characters'],
  'invalid-scraper-network.yaml': ['5:9 server.auth.scraperNetworks[1]: must be a network such as 10.0.0.0/8 or fd00::/8'],
  'invalid-rate-limit.yaml': ['6:20 server.auth.keys[0].rateLimit: must be COUNT/DURATION such as "100/1m"'],
  'invalid-slo-objective-ambiguous.yaml': ['5:23 checks[0].slo.objective: 99.9 is ambiguous: write "99.9%" (a percentage) or 0.999 (a ratio)'],
  'invalid-slo-objective-100.yaml': ['3:16 defaults.slo.objective: an objective of 100% leaves no error budget (every failed run would be an infinite burn rate): use at most 99.999%'],
  'invalid-slo-window.yaml': ['7:15 checks[0].slo.window: 45d is longer than the 30 days of history kept', '11:36 checks[1].slo.window: 36h30m: a window over 24h counts whole hours (e.g. 37h)'],
  'invalid-slo-missing-objective.yaml': ['7:10 checks[0].slo: objective is required (here or in defaults.slo)'],
  'invalid-unknown-group.yaml': ['5:21 checks[0].groups[1]: must be one of live, ready, startup (got "liveness")'],
  'invalid-multiple.yaml': [
    '4:9 server.port: must be at most 65535',
    '5:16 server.showDetails: must be one of never, when-authorized, always (got "sometimes")',
    '6:3 server.bind: unknown key',
    '8:12 defaults.timeout: must be a duration with a unit, such as "5s" or "5ms" (a bare number is ambiguous)',
    '10:11 checks[0].name: must match [a-z0-9][a-z0-9_-]* (lower case, digits, - and _)',
    '12:10 checks[0].url: scheme must be http or https, not redis',
    '16:5 checks[1].timout: unknown key (did you mean "timeout"?)',
    `20:12 checks[2].query: ${BAD_REFERENCE}`,
    '22:10 log.level: environment variable CONFIG_TEST_UNSET_LEVEL is not set and has no default',
  ],
};

function loadError(file: string): ConfigError {
  try {
    loadConfigFile(file, { env: {} });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`${file} loaded without error`);
}

describe('invalid config fixtures: exact error text per rule', () => {
  it('every invalid-*.yaml fixture has an expected message (and every expectation a fixture)', () => {
    const fixtures = readdirSync(DIR).filter((f) => f.startsWith('invalid-') && f.endsWith('.yaml')).sort();
    assert.deepEqual(fixtures, Object.keys(EXPECTED).sort());
  });

  for (const [fixture, problems] of Object.entries(EXPECTED)) {
    it(fixture, () => {
      const file = join(DIR, fixture);
      const err = loadError(file);
      assert.equal(err.code, 'ERR_CONFIG_INVALID');
      assert.equal(err.file, file);
      assert.equal(err.message, problems.map((p) => `${file}:${p}`).join('\n'));
      assert.equal(err.problems.length, problems.length);
    });
  }

  it('the multi-error fixture reports every problem at once, sorted by line then column', () => {
    const err = loadError(join(DIR, 'invalid-multiple.yaml'));
    assert.equal(err.problems.length, 9);
    const positions = err.problems.map((p) => [p.line, p.column] as const);
    const sorted = [...positions].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    assert.deepEqual(positions, sorted);
    // problems found by substitution (bad reference, unset variable) and by the schema are interleaved by line
    assert.deepEqual(
      err.problems.map((p) => p.path),
      ['server.port', 'server.showDetails', 'server.bind', 'defaults.timeout', 'checks[0].name', 'checks[0].url', 'checks[1].timout', 'checks[2].query', 'log.level'],
    );
  });

  it('a missing config file is one clear problem without a position', () => {
    const file = join(DIR, 'does-not-exist.yaml');
    const err = loadError(file);
    assert.equal(err.message, `${file}: cannot read config file: no such file (ENOENT)`);
  });
});

const REDIS = 'checks:\n  - name: c\n    kind: redis\n    url: redis://mymaster\n';
const POSTGRES = 'checks:\n  - name: c\n    kind: postgres\n    url: postgres://db/app\n';

/** More rules, inline: text → the whole error message (source name "t.yaml"). */
const INLINE: [string, string, string][] = [
  ['check without kind', 'checks:\n  - name: app\n    url: http://127.0.0.1/\n', `2:5 checks[0].kind: is required: one of ${CHECK_KINDS.join(', ')}`],
  ['reversed status range', "checks:\n  - name: app\n    kind: http\n    url: http://127.0.0.1/\n    expect: { status: ['300-200'] }\n", '5:24 checks[0].expect.status[0]: range start must not exceed its end, e.g. "200-299"'],
  ['status of the wrong type', 'checks:\n  - name: app\n    kind: http\n    url: http://127.0.0.1/\n    expect: { status: [true] }\n', '5:24 checks[0].expect.status[0]: must be a number or a string'],
  ['status code out of range', 'checks:\n  - name: app\n    kind: http\n    url: http://127.0.0.1/\n    expect: { status: [700] }\n', '5:24 checks[0].expect.status[0]: must be at most 599'],
  ['defaults: timeout above interval', 'defaults:\n  interval: 1s\n  timeout: 2s\n', '3:12 defaults.timeout: timeout (2s) must not exceed interval (1s)'],
  ['check timeout above the inherited interval', 'defaults:\n  interval: 1s\n  timeout: 500ms\nchecks:\n  - name: a\n    kind: tcp\n    url: tcp://127.0.0.1:1\n    timeout: 2s\n', '8:14 checks[0].timeout: timeout (2s) must not exceed interval (1s, from defaults.interval)'],
  ['check interval below the inherited timeout', 'checks:\n  - name: a\n    kind: tcp\n    url: tcp://127.0.0.1:1\n    interval: 1s\n', '5:15 checks[0].interval: timeout (2s, from defaults.timeout) must not exceed interval (1s)'],
  ['negative duration where 0 is allowed', 'server:\n  drainDelay: -1s\n', '2:15 server.drainDelay: must not be negative'],
  ['metrics path without /', 'telemetry:\n  prometheus: { path: metrics }\n', '2:23 telemetry.prometheus.path: must start with "/"'],
  ['empty service name', "telemetry:\n  serviceName: ''\n", '2:16 telemetry.serviceName: must not be empty'],
  ['method in lower case', 'checks:\n  - name: a\n    kind: http\n    url: http://127.0.0.1/\n    method: get\n', '5:13 checks[0].method: must be one of GET, HEAD, POST, PUT, OPTIONS (got "get")'],
  ['key in the wrong case', 'checks:\n  - name: a\n    kind: tcp\n    url: tcp://127.0.0.1:1\n    Interval: 5s\n', '5:5 checks[0].Interval: unknown key (did you mean "interval"?)'],
  ['checks with no value', 'checks:\n', '1:8 checks: is empty; must be a list'],
  ['a check that is not a mapping', 'checks:\n  - app\n', '2:5 checks[0]: must be a mapping'],
  ['a list at the top level', '- a\n', '1:1 (root): must be a mapping'],
  ['duplicate API key name', 'server:\n  auth:\n    keys:\n      - { name: a, key: 0123456789abcdef }\n      - { name: a, key: 0123456789abcdeg }\n', '5:17 server.auth.keys[1].name: duplicate key name "a"'],
  ['zero rate limit', 'server:\n  auth:\n    anonymousRateLimit: 0/1m\n', '3:25 server.auth.anonymousRateLimit: must be COUNT/DURATION such as "100/1m"'],
  ['URL that does not parse', 'checks:\n  - name: a\n    kind: http\n    url: not a url\n', '4:10 checks[0].url: must be a URL (http:// or https://…)'],
  ['duplicate key in flow style', 'server: { port: 1, port: 2 }\n', '1:20 server.port: duplicate key (first defined on line 1)'],
  ['redis: masterName without sentinels', `${REDIS}    masterName: mymaster\n`, '2:5 checks[0].sentinels: are required with masterName (the Sentinels to ask)'],
  ['redis: sentinelPassword without sentinels', `${REDIS}    sentinelPassword: x\n`, '5:23 checks[0].sentinelPassword: applies only with sentinels'],
  ['redis: a Sentinel address without a port', `${REDIS}    sentinels: [sentinel-0]\n    masterName: m\n`, '5:17 checks[0].sentinels[0]: must be host:port, e.g. sentinel-0.redis:26379'],
  ['redis: sentinels and cluster', `${REDIS}    sentinels: [s:26379]\n    masterName: m\n    cluster: true\n`, '7:14 checks[0].cluster: cannot be combined with sentinels (a Cluster has no Sentinels)'],
  ['redis: sentinels and role replica', `${REDIS}    sentinels: [s:26379]\n    masterName: m\n    role: replica\n`, '7:11 checks[0].role: with sentinels the probe checks the master the Sentinels name (role master is checked always)'],
  ['redis: maxMemoryRatio above 1', `${REDIS}    maxMemoryRatio: 1.5\n`, '5:21 checks[0].maxMemoryRatio: must be at most 1'],
  ['redis: maxMemoryRatio 0', `${REDIS}    maxMemoryRatio: 0\n`, '5:21 checks[0].maxMemoryRatio: must be greater than 0'],
  ['postgres: sslmode contradicting the url', 'checks:\n  - name: c\n    kind: postgres\n    url: postgres://db/app?sslmode=require\n    sslmode: verify-full\n', '5:14 checks[0].sslmode: verify-full contradicts ?sslmode=require in the url'],
  ['postgres: tls without TLS', `${POSTGRES}    tls: { ca: x }\n`, '5:10 checks[0].tls: TLS options need sslmode require, verify-ca or verify-full'],
  ['postgres: verify-ca without a CA', `${POSTGRES}    sslmode: verify-ca\n`, '5:14 checks[0].sslmode: sslmode verify-ca needs tls.ca (with the system CAs any certificate a public CA issued would pass; use verify-full for those)'],
  ['postgres: a TLS file parameter in the url', 'checks:\n  - name: c\n    kind: postgres\n    url: postgres://db/app?sslrootcert=/etc/ca.pem&sslmode=verify-full\n', '4:10 checks[0].url: ?sslrootcert= is not used: TLS is set with sslmode and tls (ca, cert and key as PEM text, e.g. ${file:/path})'],
  ['postgres: client certificate without its key', `${POSTGRES}    sslmode: verify-full\n    tls: { cert: x }\n`, '6:10 checks[0].tls.key: a client certificate needs both cert and key'],
  ['tls: a bare file path instead of PEM text', 'checks:\n  - name: c\n    kind: http\n    url: https://api:8443/\n    tls: { ca: /etc/ssl/ca.pem }\n', '5:16 checks[0].tls.ca: is a file path, not PEM text: to read the file, write ${file:/etc/ssl/ca.pem}'],
  ['postgres: serverName without verify-full', `${POSTGRES}    sslmode: require\n    tls: { serverName: db }\n`, '6:24 checks[0].tls.serverName: applies only with sslmode verify-full (the other modes do not check the name)'],
  ['postgres: insecureSkipVerify', `${POSTGRES}    sslmode: require\n    tls: { insecureSkipVerify: true }\n`, '6:32 checks[0].tls.insecureSkipVerify: is not used with postgres: sslmode require encrypts without verifying the certificate'],
  ['postgres: maxConnectionsRatio above 1', `${POSTGRES}    maxConnectionsRatio: 2\n`, '5:26 checks[0].maxConnectionsRatio: must be at most 1'],
  ['redis: roundTrip on a replica', `${REDIS}    role: replica\n    roundTrip: true\n`, '6:16 checks[0].roundTrip: writes a key: a replica refuses writes (READONLY)'],
];

describe('more rules, inline', () => {
  for (const [name, text, expected] of INLINE) {
    it(name, () => {
      assert.throws(
        () => parseConfig(text, 't.yaml', { env: {} }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.message, `t.yaml:${expected}`);
          return true;
        },
      );
    });
  }

  it('an empty file or one with only comments is a valid config with every default', () => {
    for (const text of ['', '# nothing here\n']) {
      const config = parseConfig(text, 't.yaml', { env: {} });
      assert.deepEqual(
        { checks: config.checks, skipped: config.skipped, port: config.server.port, host: config.server.host, showDetails: config.server.showDetails, drainDelay: config.server.drainDelay },
        { checks: [], skipped: [], port: 9464, host: '0.0.0.0', showDetails: 'when-authorized', drainDelay: 5000 },
      );
    }
  });
});
