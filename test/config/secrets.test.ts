/**
 * Secret safety of the config layer: passwords in URLs and secret header
 * values are collected in `secrets`, no config error message ever repeats
 * them, and the Redactor built from `secrets` scrubs driver-like messages.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/probes/registry';
import { ConfigError } from '../../src/errors';
import { Redactor } from '../../src/redact';

const PASSWORD = 'CANARY-PASSWORD-123';
const TOKEN = 'CANARY-TOKEN-456';
const REDIS_URL = `redis://:${PASSWORD}@127.0.0.1:1/0`;

const VALID = `
checks:
  - name: cache
    kind: redis
    url: ${REDIS_URL}
  - name: api
    kind: http
    url: http://127.0.0.1:1/healthz
    headers:
      Authorization: "Bearer ${TOKEN}"
      Accept: application/json
`;

function configError(text: string, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    parseConfig(text, 'secret.yaml', { env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  assert.fail('config loaded without error');
}

describe('config secrets', () => {
  it('collects the URL password and the Authorization header value (whole and token)', () => {
    const config = parseConfig(VALID, 'secret.yaml', { env: {} });
    assert.deepEqual([...config.secrets].sort(), [`Bearer ${TOKEN}`, PASSWORD, TOKEN].sort());
    // the non-secret header is not a secret
    assert.ok(!config.secrets.includes('application/json'));
  });

  it('headers named in secretHeaders are secrets too; a percent-encoded password is collected decoded as well', () => {
    const config = parseConfig(
      'checks:\n  - name: api\n    kind: http\n    url: http://user:p%40ss-CANARY@127.0.0.1:1/\n    headers: { X-Session: CANARY-SESSION-789 }\n    secretHeaders: [x-session]\n',
      'secret.yaml',
      { env: {} },
    );
    assert.deepEqual([...config.secrets].sort(), ['CANARY-SESSION-789', 'p%40ss-CANARY', 'p@ss-CANARY'].sort());
  });

  it('no error message of an invalid config repeats a password or token', () => {
    const text = `
server:
  showDetails: \${SHOW}
checks:
  - name: cache
    kind: http
    url: ${REDIS_URL}
  - name: db
    kind: tcp
    url: postgres://app:${PASSWORD}@127.0.0.1/db
  - name: api
    kind: http
    url: "http://u:${PASSWORD}@exa mple.com/"
    headers:
      Authorization: "Bearer ${TOKEN}"
    methd: GET
  - name: cache2
    kind: postgres
    url: \${CACHE_URL}/extra
`;
    const err = configError(text, { SHOW: TOKEN, CACHE_URL: REDIS_URL });
    assert.deepEqual(
      err.message.split('\n'),
      [
        'secret.yaml:3:16 server.showDetails: must be one of never, when-authorized, always; the value comes from SHOW',
        'secret.yaml:7:10 checks[0].url: scheme must be http or https, not redis',
        'secret.yaml:10:10 checks[1].url: scheme must be tcp, not postgres',
        'secret.yaml:13:10 checks[2].url: must be a URL (http:// or https://…)',
        'secret.yaml:16:5 checks[2].methd: unknown key (did you mean "method"?)',
        'secret.yaml:19:10 checks[3].url: scheme must be postgres or postgresql, not redis; the value comes from CACHE_URL',
      ],
    );
    assert.ok(!err.message.includes('CANARY'), err.message);
  });

  it('YAML errors on a line holding a password do not quote the line', () => {
    const err = configError(`checks: []\nbroken: {a: 1}}\nurl: ${REDIS_URL} }\n`);
    assert.equal(
      err.message,
      [
        'secret.yaml:2:15: YAML: Unexpected flow-map-end token in YAML stream: "}"',
        'secret.yaml:3:1: YAML: Unexpected scalar token in YAML stream',
        'secret.yaml:3:4: YAML: Unexpected map-value-ind token in YAML stream: ":"',
        'secret.yaml:3:6: YAML: Unexpected scalar token in YAML stream',
      ].join('\n'),
    );
    // an unquoted password that starts with * is read as an alias: the name is not repeated
    const alias = configError(`server:\n  auth:\n    keys:\n      - name: ops\n        key: *${PASSWORD}\n`);
    assert.equal(alias.message, 'secret.yaml:5:14: YAML: alias (*name) refers to no anchor defined before it; quote a value that starts with *');
  });

  it('the Redactor built from `secrets` removes them from driver-like messages', () => {
    const config = parseConfig(VALID, 'secret.yaml', { env: {} });
    const redactor = new Redactor(config.secrets);
    assert.equal(redactor.text(`connect to redis://:${PASSWORD}@host failed`), 'connect to redis://:***@host failed');
    assert.equal(redactor.text(`WRONGPASS invalid username-password pair (${PASSWORD})`), 'WRONGPASS invalid username-password pair (***)');
    assert.equal(redactor.text(`request failed with header Authorization: Bearer ${TOKEN}`), 'request failed with header Authorization: ***');
    assert.equal(redactor.text(`token ${TOKEN} rejected`), 'token *** rejected');
    assert.equal(redactor.url(REDIS_URL), 'redis://:***@127.0.0.1:1/0');
  });
});
