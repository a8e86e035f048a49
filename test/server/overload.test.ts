/**
 * Load shedding (issue 14.2), the gate through its own API with an injected
 * turn scheduler, then in a real Sidecar: requests beyond the per-turn and
 * in-flight limits get 503 overloaded + Retry-After without running their
 * handler, the kubelet paths are never shed, and every shed is counted.
 * The flood itself, against the compiled sidecar, is test/security/flood.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { OverloadGate } from '../../src/server/overload';
import { Router, createHttpServer } from '../../src/server/app';
import { HttpError } from '../../src/server/respond';
import type { IncomingMessage } from 'node:http';
import pino from 'pino';
import { request } from '../helpers/http';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';

describe('OverloadGate', () => {
  test('admits perTurn requests per turn, sheds the rest, and admits again once the turn is over', () => {
    const turnEnds: (() => void)[] = [];
    const gate = new OverloadGate({ perTurn: 3, maxInFlight: 100 }, (fn) => turnEnds.push(fn));
    const admitted = [gate.admit(), gate.admit(), gate.admit()];
    assert.ok(admitted.every((a) => a !== undefined));
    assert.equal(gate.admit(), undefined, 'the fourth of the turn is shed');
    assert.equal(turnEnds.length, 1, 'one reset scheduled per turn');
    for (const a of admitted) a!.done();
    assert.equal(gate.admit(), undefined, 'done does not reopen the turn');
    turnEnds.shift()!();
    assert.ok(gate.admit(), 'the next turn admits again');
  });

  test('once the turn\'s admitted requests have taken turnBudgetMs, the rest of the turn is shed; the first of a turn always runs', () => {
    const turnEnds: (() => void)[] = [];
    let now = 0;
    const gate = new OverloadGate({ perTurn: 100, turnBudgetMs: 20, maxInFlight: 100 }, (fn) => turnEnds.push(fn), () => now);
    const a = gate.admit()!;
    now += 15;
    a.done();
    const b = gate.admit()!;
    now += 6;
    b.done();
    assert.equal(gate.admit(), undefined, '21 ms spent: shed for the rest of the turn');
    turnEnds.shift()!();
    const c = gate.admit()!;
    now += 500;
    c.done();
    assert.equal(gate.admit(), undefined, 'one slow request uses up its turn');
    turnEnds.shift()!();
    // an answer that awaits past its turn is not charged to the next one
    const slow = gate.admit()!;
    turnEnds.shift()!();
    now += 1000;
    slow.done();
    assert.ok(gate.admit(), 'the new turn is not charged for the old turn\'s wait');
  });

  test('maxInFlight bounds requests running at once, across turns; done frees a place once', () => {
    const turnEnds: (() => void)[] = [];
    const gate = new OverloadGate({ perTurn: 100, maxInFlight: 2 }, (fn) => turnEnds.push(fn));
    const a = gate.admit()!;
    turnEnds.shift()!();
    const b = gate.admit()!;
    turnEnds.shift()!();
    assert.equal(gate.running, 2);
    assert.equal(gate.admit(), undefined, 'a third at once is shed, whatever the turn');
    a.done();
    a.done();
    assert.equal(gate.running, 1, 'a second done of the same admission frees nothing more');
    assert.ok(gate.admit());
    b.done();
  });

  test('limits must be positive integers', () => {
    assert.throws(() => new OverloadGate({ perTurn: 0 }), /perTurn must be a positive integer \(got 0\)/);
    assert.throws(() => new OverloadGate({ maxInFlight: 1.5 }), /maxInFlight must be a positive integer/);
    assert.throws(() => new OverloadGate({ turnBudgetMs: -1 }), /turnBudgetMs must be a positive integer/);
  });
});

describe('the HTTP server sheds beyond the gate, never the routes that opt out', () => {
  let server: http.Server;
  let port: number;
  let runs = 0;
  const shed: (string | undefined)[] = [];
  const release: (() => void)[] = [];
  before(async () => {
    const router = new Router();
    router.add('/slow', ['GET'], async (_req, res) => {
      runs++;
      await new Promise<void>((resolve) => release.push(resolve));
      res.end('slow done');
    });
    router.add('/kubelet', ['GET'], (_req, res) => void res.end('ok'), { shed: false });
    server = createHttpServer({
      router,
      identify: (_req: IncomingMessage) => ({ kind: 'anonymous' }),
      logger: pino({ level: 'silent' }),
      overload: new OverloadGate({ perTurn: 100, maxInFlight: 2 }),
      metrics: { bind: () => ({ record: () => undefined }), refused: () => undefined, shed: (route) => shed.push(route) },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('two slow requests run; the third gets 503 overloaded + Retry-After at once; the opted-out route still answers', async () => {
    const first = request(port, '/slow');
    const second = request(port, '/slow');
    // wait for the event that proves both are running: their handlers started
    while (release.length < 2) await new Promise((resolve) => setImmediate(resolve));
    const third = await request(port, '/slow');
    assert.equal(third.status, 503);
    assert.equal(third.headers['retry-after'], '1');
    assert.equal(third.json().error.code, 'overloaded');
    assert.match(third.json().error.message, /shedding load; retry in 1s/);
    assert.equal(runs, 2, 'the shed request never ran its handler');
    assert.deepEqual(shed, ['/slow']);
    const kubelet = await request(port, '/kubelet');
    assert.equal(kubelet.status, 200, 'a route with shed: false answers under overload');
    for (const r of release.splice(0)) r();
    assert.deepEqual([(await first).status, (await second).status], [200, 200]);
    // the places are free again: the next one runs
    const again = request(port, '/slow');
    while (release.length < 1) await new Promise((resolve) => setImmediate(resolve));
    release.shift()!();
    assert.equal((await again).status, 200);
    assert.equal(runs, 3);
  });
});

describe('while the gate is saturated, everything that cannot be a kubelet path is shed first (issue 14.2)', () => {
  let server: http.Server;
  let port: number;
  let identified = 0;
  let guarded = 0;
  const shed: (string | undefined)[] = [];
  const release: (() => void)[] = [];
  before(async () => {
    const router = new Router();
    router.add('/slow', ['GET'], async (_req, res) => {
      await new Promise<void>((resolve) => release.push(resolve));
      res.end('slow done');
    });
    router.add('/upload', ['POST'], (_req, res) => void res.end('stored'));
    router.add('/kubelet', ['GET'], (_req, res) => void res.end('ok'), { shed: false });
    router.addPrefix('/kubelet/', ['GET'], (_req, res, ctx) => void res.end(`member ${ctx.param}`), undefined, undefined, { shed: false });
    router.setAliases(new Map([['/ready', '/kubelet']]));
    server = createHttpServer({
      router,
      identify: (_req: IncomingMessage) => {
        identified++;
        return { kind: 'anonymous' };
      },
      // refuses what asks for it (as a rate limiter over quota would): the shed comes first
      guard: (req) => {
        guarded++;
        if (req.headers['x-refuse']) throw new HttpError(429, 'rate_limited', 'slow down');
      },
      logger: pino({ level: 'silent' }),
      overload: new OverloadGate({ perTurn: 100, maxInFlight: 1, retryAfterSeconds: 3 }),
      metrics: { bind: () => ({ record: () => undefined }), refused: () => undefined, shed: (route) => shed.push(route) },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('the router says which raw targets may reach a never-shed route, erring towards yes', () => {
    const router = new Router();
    router.add('/livez', ['GET'], () => undefined, { shed: false });
    router.add('/health', ['GET'], () => undefined);
    router.addPrefix('/readyz/', ['GET'], () => undefined, undefined, undefined, { shed: false });
    router.setAliases(new Map([['/alive', '/livez'], ['/status', '/health']]));
    for (const target of ['/livez', '/livez?verbose', '/livez/', '/livezz', '/readyz/db', '/alive', '/alive?verbose']) assert.equal(router.mayBeUnshed(target), true, target);
    for (const target of ['/health', '/health/live', '/status', '/', '/metrics', '//livez', '/x/livez']) assert.equal(router.mayBeUnshed(target), false, target);
  });

  test('a shed request is answered 503 before the key check and the guard; kubelet targets with a query, a slash or an alias still go the full way', async () => {
    const slow = request(port, '/slow');
    while (release.length < 1) await new Promise((resolve) => setImmediate(resolve));
    const [identifiedBefore, guardedBefore] = [identified, guarded];
    const refused = await request(port, '/slow', { headers: { 'x-refuse': '1' } });
    assert.equal(refused.status, 503, 'shed, not refused by the guard (429)');
    assert.equal(refused.headers['retry-after'], '3');
    assert.equal(refused.headers['cache-control'], 'no-store');
    assert.equal(refused.json().error.code, 'overloaded');
    assert.match(refused.json().error.message, /retry in 3s/);
    const unknown = await request(port, '/nowhere?x=1');
    assert.equal(unknown.status, 503);
    const upload = await request(port, '/upload', { method: 'POST', body: 'x'.repeat(1000) });
    assert.equal(upload.status, 503);
    assert.equal(upload.headers.connection, 'close', 'its body is never read: the connection closes');
    const head = await request(port, '/slow', { method: 'HEAD' });
    assert.equal(head.status, 503);
    assert.equal(head.body, '');
    assert.deepEqual([identified, guarded], [identifiedBefore, guardedBefore], 'no key check, no guard for what is shed');
    assert.deepEqual(shed, ['/slow', undefined, '/upload', '/slow']);
    for (const [target, body] of [['/kubelet?verbose', 'ok'], ['/kubelet/', 'ok'], ['/kubelet/db', 'member db'], ['/ready', 'ok']]) {
      const reply = await request(port, target);
      assert.deepEqual([reply.status, reply.body], [200, body], target);
    }
    assert.equal(identified, identifiedBefore + 4, 'the kubelet targets went the full way');
    release.shift()!();
    assert.equal((await slow).status, 200);
    const after = await request(port, '/slow', { headers: { 'x-refuse': '1' } });
    assert.equal(after.status, 429, 'once the gate has room, the guard decides again');
  });
});
