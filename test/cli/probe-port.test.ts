/**
 * `run --probe-port PORT` (issue 14.2): the kubelet paths on a port of their
 * own, served from their own thread, whatever the config file says about
 * server.probeListener — the deploy kit sets it and points the Kubernetes
 * probes there (docs/deploy.md). Bad values are usage errors (exit 2) that
 * say what is wrong; a reload keeps the listener.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { logLines, run, startChild, type Child } from '../deploy/support';
import { CLI } from '../helpers/paths';
import { freePort, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';

let dir: string;
let app: TestHttpServer;
let child: Child | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cli-probe-port-'));
  app = await startHttpServer((_req, res) => res.end('ok'));
});
after(async () => {
  await child?.kill('SIGKILL');
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

const config = (port: number, extra = '') => `server: { port: ${port}, host: 127.0.0.1, drainDelay: 0s${extra} }\nlog: { level: info }\nchecks:\n  - { name: app, kind: http, url: "${app.url}", interval: 2s }\n`;

describe('run --probe-port', () => {
  it('a value that is no port 1-65535 is a usage error naming it; other commands do not take it', async () => {
    const file = join(dir, 'usage.yaml');
    writeFileSync(file, config(9));
    for (const value of ['0', '65536', 'abc', '80x', '-1', '']) {
      const { code, stdout, stderr } = await run(process.execPath, [CLI, 'run', '--config', file, `--probe-port=${value}`]);
      assert.equal(code, 2, `${value}: ${stderr}`);
      assert.equal(stdout, '');
      assert.match(stderr, /^health-sidecar run: --probe-port must be a port number 1-65535 \(got ".*"\)\nusage: health-sidecar run --config FILE \[--probe-port PORT\]\n/, value);
    }
    const validate = await run(process.execPath, [CLI, 'validate', '--config', file, '--probe-port', '9465']);
    assert.equal(validate.code, 2);
    assert.match(validate.stderr, /unknown option --probe-port/);
  });

  it('serves the kubelet paths on that port from their own thread, over a file that sets none, and keeps it across a reload', async () => {
    const [port, probePort] = [await freePort(), await freePort()];
    const file = join(dir, 'sidecar.yaml');
    writeFileSync(file, config(port));
    child = startChild(process.execPath, [CLI, 'run', '--config', file, '--probe-port', String(probePort)]);
    await waitFor(() => logLines(child!.stdout()).some((l) => String(l.msg).startsWith('listening on')) || child!.proc.exitCode !== null, { timeoutMs: 20_000, what: 'listening' });
    assert.equal(child.proc.exitCode, null, child.stderr());
    const line = logLines(child.stdout()).find((l) => l.probePort !== undefined);
    assert.deepEqual([line?.probePort, line?.thread, line?.msg], [probePort, true, `kubelet paths also on 127.0.0.1:${probePort} (own thread)`]);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${probePort}/readyz`)).status === 200, { timeoutMs: 10_000, what: '/readyz 200 on the probe port' });
    assert.equal(await (await fetch(`http://127.0.0.1:${probePort}/livez`)).text(), 'ok');
    assert.equal((await fetch(`http://127.0.0.1:${probePort}/health`)).status, 404, 'only the kubelet paths on the probe port');
    // the file says thread: false and changes a check; the flag's port stays, the reload applies, no restart needed for it
    writeFileSync(file, config(port, ', probeListener: { port: 1, thread: false }').replace("interval: 2s", "interval: 3s"));
    child.proc.kill('SIGHUP');
    await waitFor(() => logLines(child!.stdout()).some((l) => /reload/i.test(String(l.msg)) && l.level !== 50), { timeoutMs: 10_000, what: 'the reload logged' });
    assert.equal(await (await fetch(`http://127.0.0.1:${probePort}/livez`)).text(), 'ok', 'still on the flag\'s port');
    child.proc.kill('SIGTERM');
    assert.deepEqual(await child.exited, { code: 0, signal: null });
  });
});
