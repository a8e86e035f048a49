/**
 * A reload that changes a setting only a restart applies (the listeners) is
 * applied for everything else and says, in one warning, which settings wait for
 * the restart: server.probeListener is one of them (the kubelet listener is
 * opened at start), and the port it listens on stays the one it started with.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigReloader } from '../../src/config/reload';
import { loadConfigFile } from '../../src/probes/registry';
import { Sidecar } from '../../src/sidecar';
import { createLogger } from '../../src/telemetry/log';

const dir = mkdtempSync(join(tmpdir(), 'reload-restart-only-'));
const file = join(dir, 'sidecar.yaml');
const config = (probeListener: string) => `
server: { port: 0, host: 127.0.0.1, drainDelay: 0s${probeListener} }
checks: []
`;
let sidecar: Sidecar | undefined;
after(async () => {
  await sidecar?.shutdown({ drain: false });
  rmSync(dir, { recursive: true, force: true });
});

const status = (port: number, path: string) =>
  new Promise<number>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).once('error', reject);
  });

describe('config reload: restart-only settings', () => {
  it('a changed server.probeListener is named as taking effect after a restart, and the listener is not opened by the reload', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
    writeFileSync(file, config(''));
    sidecar = new Sidecar(loadConfigFile(file), logger);
    const port = await sidecar.start();
    assert.equal(await status(port, '/livez'), 200);
    // a free port for the listener the new file asks for
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const probePort = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const reloader = new ConfigReloader({ file, target: sidecar, logger, watch: false, sighup: false, load: (f) => loadConfigFile(f) });
    writeFileSync(file, config(`, probeListener: { port: ${probePort}, thread: false }`));
    const outcome = await reloader.reload('sighup');
    reloader.stop();
    assert.equal(outcome.status, 'applied');
    const warning = lines.map((l) => JSON.parse(l) as { msg: string; settings?: string[] }).find((l) => l.settings !== undefined);
    assert.ok(warning, `a warning names the restart-only settings (${lines.length} log lines)`);
    assert.deepEqual(warning.settings, ['server.probeListener']);
    assert.match(warning.msg, /server\.probeListener changed; takes effect after a restart/);
    // what the log says is what happens: nothing listens on the new port yet
    await assert.rejects(status(probePort, '/livez'), /ECONNREFUSED/);
    assert.equal(await status(port, '/livez'), 200);
  });
});
