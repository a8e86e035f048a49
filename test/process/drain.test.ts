/**
 * Graceful drain of the compiled CLI (issue 16.5). 50 slow requests are in
 * flight (POST /admin/checks/app/run while the dependency holds its answer),
 * then SIGTERM: readiness fails first; after drainDelay new connections are
 * refused; once the dependency answers, all 50 are answered 200 (none reset)
 * and the process exits 0 without reaching its drain deadline. A request that
 * never finishes is cut only at the deadline, and the process still exits 0,
 * saying how many were cut.
 */
import assert from 'node:assert/strict';
import http, { type ServerResponse } from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { get } from '../helpers/http';
import { ensureBuilt } from '../helpers/paths';
import { startCli, type CliProcess } from '../telemetry/support';

const KEY = 'drain-key-0123456789abcdef';
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});
before(() => ensureBuilt());

/** a dependency that answers 200 at once, or holds its answers while `hold` is set */
async function dependency(): Promise<TestHttpServer & { hold: boolean; held: ServerResponse[]; release(): void }> {
  const held: ServerResponse[] = [];
  const control = {
    hold: false,
    held,
    release() {
      control.hold = false;
      for (const res of held.splice(0)) res.end('ok');
    },
  };
  const server = await startHttpServer((_req, res) => {
    if (control.hold) held.push(res);
    else res.end('ok');
  });
  return Object.assign(control, server);
}

function yaml(url: string, drainDelay: string, drainTimeout: string): string {
  return `
# overload: room for the 50 slow requests at once (this is about drain, not load shedding)
server: { port: 0, host: 127.0.0.1, drainDelay: ${drainDelay}, drainTimeout: ${drainTimeout}, auth: { keys: [ { name: ops, key: "${KEY}", rateLimit: 1000/1m } ] }, overload: { perTurn: 100, maxInFlight: 100 } }
log: { level: info }
telemetry: { traces: { enabled: false } }
defaults: { interval: 1h, timeout: 1m, retry: { attempts: 1 } }
checks: [ { name: app, kind: http, url: "${url}/" } ]
`;
}

/** POST /admin/checks/app/run on its own connection; resolves with the status, or the socket error's code */
function run(port: number): { sent: Promise<void>; answer: Promise<number | string> } {
  let sent!: () => void;
  const sentP = new Promise<void>((resolve) => (sent = resolve));
  const answer = new Promise<number | string>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/admin/checks/app/run', agent: false, headers: { authorization: `Bearer ${KEY}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end(() => sent());
  });
  return { sent: sentP, answer };
}

function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

const runsLogged = (cli: CliProcess) => cli.records().filter((r) => r.msg === 'admin: check app run by key "ops"').length;
const logged = (cli: CliProcess, prefix: string) => cli.records().find((r) => typeof r.msg === 'string' && r.msg.startsWith(prefix));

describe('drain on SIGTERM', () => {
  it('50 slow requests in flight are all answered 200; new connections are refused; exit 0 before the deadline', async () => {
    const dep = await dependency();
    cleanups.push(() => dep.close());
    const cli = await startCli(yaml(dep.url, '1s', '1m'), {});
    cleanups.push(() => cli.kill());
    await waitFor(async () => (await get(cli.port, '/readyz')).status === 200, { what: 'ready', timeoutMs: 20_000 });

    dep.hold = true;
    const requests = Array.from({ length: 50 }, () => run(cli.port));
    await Promise.all(requests.map((r) => r.sent));
    // every one of them reached the handler (it logs before waiting for the run)
    await waitFor(() => runsLogged(cli) === 50, { what: '50 runs in flight', timeoutMs: 20_000 });
    await waitFor(() => dep.held.length === 1, { what: 'the probe run waiting for the dependency' });

    const exited = new Promise<{ code: number | null }>((resolve) => cli.child.once('exit', (code) => resolve({ code })));
    cli.child.kill('SIGTERM');
    await waitFor(async () => (await get(cli.port, '/readyz')).status === 503, { what: 'readiness fails first', timeoutMs: 10_000 });
    // after drainDelay: no new connections, the 50 still waiting
    const closing = await waitFor(() => logged(cli, 'no new connections'), { what: 'the server closed', timeoutMs: 20_000 });
    assert.equal(closing!.inFlight, 50);
    assert.equal(await connectRefused(cli.port), true, 'new connections are refused while draining');

    dep.release();
    const answers = await Promise.all(requests.map((r) => r.answer));
    assert.deepEqual(answers, Array.from({ length: 50 }, () => 200));
    assert.equal((await exited).code, 0);
    assert.equal(logged(cli, 'drain deadline reached'), undefined, 'exited within the drain time, nothing cut');
    assert.ok(logged(cli, 'stopped'));
  });

  it('a request that never finishes is cut at the drain deadline, counted, and the process still exits 0', async () => {
    const dep = await dependency();
    cleanups.push(() => dep.close());
    const cli = await startCli(yaml(dep.url, '0s', '500ms'), {});
    cleanups.push(() => cli.kill());
    await waitFor(async () => (await get(cli.port, '/readyz')).status === 200, { what: 'ready', timeoutMs: 20_000 });
    dep.hold = true;
    const stuck = run(cli.port);
    await waitFor(() => runsLogged(cli) === 1 && dep.held.length === 1, { what: 'the run in flight', timeoutMs: 20_000 });
    const exited = new Promise<{ code: number | null }>((resolve) => cli.child.once('exit', (code) => resolve({ code })));
    cli.child.kill('SIGTERM');
    assert.equal((await exited).code, 0);
    assert.equal(typeof (await stuck.answer), 'string', `the stuck request was cut (a socket error, no answer): ${await stuck.answer}\n${cli.lines.join('\n')}`);
    assert.equal(logged(cli, 'drain deadline reached')?.cut, 1);
    dep.release();
  });
});
