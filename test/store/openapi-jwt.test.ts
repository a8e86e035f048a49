/**
 * Issue 20: the OpenAPI 3.1 document at /api/v1/openapi.json is valid
 * (@seriousme/openapi-schema-validator) and real responses of the compiled CLI
 * validate against their schemas in it (ajv, JSON Schema 2020-12); bearer JWTs are verified against the issuer's
 * JWKS served by a local HTTP server: a good token works and is named in the
 * audit log, a wrong issuer or audience, an expired token and `alg: none`
 * are 401.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020';
import { ensureBuilt } from '../helpers/paths';
import { get } from '../helpers/http';
import { startHttpServer, type TestHttpServer } from '../helpers/servers';
import { api, monitorYaml, privateDatabase, startMonitor, type MonitorProcess, type PrivateDatabase } from '../helpers/monitor-store';

let db: PrivateDatabase;
let issuer: TestHttpServer;
let monitor: MonitorProcess;
let sign: (claims: Record<string, unknown>, options?: { exp?: number }) => Promise<string>;
const AUD = 'monitors-api';
const OPS_KEY = 'ops-key-beside-jwt-0123456789';

before(async () => {
  ensureBuilt();
  const jose = await import('jose');
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256');
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  issuer = await startHttpServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  const iss = `http://127.0.0.1:${issuer.port}/`;
  sign = (claims, options = {}) =>
    new jose.SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(String(claims.iss ?? iss))
      .setAudience(String(claims.aud ?? AUD))
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 600)
      .sign(privateKey);
  db = await privateDatabase();
  monitor = await startMonitor(
    (port) =>
      monitorYaml({
        port,
        keys: [{ name: 'ops', key: OPS_KEY, scopes: ['monitors:read'] }],
        jwt: `{ issuer: "${iss}", jwksUri: "http://127.0.0.1:${issuer.port}/jwks.json", audience: ${AUD}, claim: groups, scopes: { platform: [monitors:read, monitors:write], auditors: [admin] } }`,
        checks: [`{ name: file-check, kind: tcp, url: "tcp://127.0.0.1:${issuer.port}", interval: 1h, timeout: 1s }`],
      }),
    { STORE_URL: db.url },
  );
});

after(async () => {
  await monitor?.stop();
  await issuer?.close();
  await db?.drop();
});

test('a JWT of the issuer works; wrong issuer, wrong audience, expired and alg none are 401', async () => {
  const { port } = monitor;
  const good = await sign({ groups: ['platform'] });
  const created = await api(port, 'POST', '/api/v1/monitors', good, { name: 'by-jwt', kind: 'tcp', url: `tcp://127.0.0.1:${issuer.port}`, interval: '1h', timeout: '1s' });
  assert.equal(created.status, 201, created.body);
  assert.equal(created.json().createdBy, 'jwt:alice');
  const auditor = await sign({ groups: 'auditors' });
  const audit = await api(port, 'GET', '/api/v1/audit', auditor);
  assert.equal(audit.status, 200, audit.body);
  assert.equal(audit.json().items[0].actor, 'jwt:alice');
  assert.equal((await api(port, 'GET', '/api/v1/audit', good)).status, 403, 'platform has no admin scope');

  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: `http://127.0.0.1:${issuer.port}/`, aud: AUD, sub: 'mallory', groups: ['platform'], exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url')}.`;
  const bad: [string, string, RegExp][] = [
    ['wrong issuer', await sign({ groups: ['platform'], iss: 'https://evil.example/' }), /wrong issuer/],
    ['wrong audience', await sign({ groups: ['platform'], aud: 'someone-else' }), /wrong audience/],
    ['expired', await sign({ groups: ['platform'] }, { exp: Math.floor(Date.now() / 1000) - 120 }), /expired/],
    ['alg none', none, /algorithm|not a valid JWT/],
  ];
  // API keys keep working beside JWTs; a wrong key is still a wrong key
  assert.equal((await api(port, 'GET', '/api/v1/monitors', OPS_KEY)).status, 200);
  const wrongKey = await api(port, 'GET', '/api/v1/monitors', 'not-a-key-and-not-a-jwt-000');
  assert.equal(wrongKey.status, 401);
  assert.equal(wrongKey.json().error.code, 'invalid_key');
  for (const [what, token, message] of bad) {
    const reply = await api(port, 'GET', '/api/v1/monitors', token);
    assert.equal(reply.status, 401, `${what}: ${reply.body}`);
    assert.equal(reply.json().error.code, 'invalid_token', what);
    assert.match(reply.json().error.message, message, what);
    assert.doesNotMatch(reply.body, new RegExp(token.slice(0, 20)), `${what}: the token is not echoed`);
  }
});

test('/api/v1/openapi.json is a valid OpenAPI 3.1 document and real responses validate against it', async () => {
  const { port } = monitor;
  const doc = (await get(port, '/api/v1/openapi.json')).json();
  assert.equal(doc.openapi, '3.1.0');
  const documentValidator = new Validator();
  const checked = await documentValidator.validate(doc);
  assert.deepEqual(checked.errors ?? [], [], 'a valid OpenAPI document');
  assert.equal(checked.valid, true);
  assert.equal(documentValidator.version, '3.1');
  // each response against its schema in the document (JSON Schema 2020-12, the dialect of OpenAPI 3.1)
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ components: doc.components }, 'doc');
  const operations = new Map<string, Record<string, { content: { 'application/json': { schema: object } } }>>();
  for (const item of Object.values(doc.paths as Record<string, Record<string, { operationId: string; responses: never }>>)) for (const op of Object.values(item)) operations.set(op.operationId, op.responses);
  const fix = (schema: unknown): unknown => JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/'));
  const token = await sign({ groups: ['platform', 'auditors'] });
  const replies: [string, number, () => Promise<{ status: number; json(): unknown }>][] = [
    ['listMonitors', 200, () => api(port, 'GET', '/api/v1/monitors', token)],
    ['getMonitor', 200, () => api(port, 'GET', '/api/v1/monitors/file-check', token)],
    ['createMonitor', 201, () => api(port, 'POST', '/api/v1/monitors', token, { name: 'oa', kind: 'tcp', url: `tcp://127.0.0.1:${issuer.port}`, interval: '1h', timeout: '1s' })],
    ['createMonitor', 400, () => api(port, 'POST', '/api/v1/monitors', token, { name: 'oa2', kind: 'nope' })],
    ['patchMonitor', 412, () => api(port, 'PATCH', '/api/v1/monitors/by-jwt', token, { critical: false }, { 'if-match': '"99"' })],
    ['monitorResults', 200, () => api(port, 'GET', '/api/v1/monitors/by-jwt/results', token)],
    ['auditLog', 200, () => api(port, 'GET', '/api/v1/audit', token)],
    ['deleteMonitor', 200, () => api(port, 'DELETE', '/api/v1/monitors/oa', token)],
  ];
  for (const [operation, status, pending] of replies) {
    const reply = await pending();
    assert.equal(reply.status, status, `${operation}: ${JSON.stringify(reply.json())}`);
    const schema = operations.get(operation)?.[String(status)]?.content['application/json'].schema;
    assert.ok(schema, `${operation} documents ${status}`);
    const validate = ajv.compile(fix(schema) as object);
    assert.ok(validate(reply.json()), `${operation} ${status} matches the document: ${JSON.stringify(validate.errors)}`);
  }
});
