/**
 * Issue 14.3: telemetry.serviceName. A reload that changes it logs "takes
 * effect after a restart" — and the status page and notifications indeed keep
 * the name they started with (they used to switch at once). A name read with
 * ${file:…} is a secret: the page shows the default instead.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigReloader } from '../../src/config/reload';
import { loadConfigFile } from '../../src/probes/registry';
import { Sidecar } from '../../src/sidecar';
import { createLogger } from '../../src/telemetry/log';
import { call } from './support';

const dir = mkdtempSync(join(tmpdir(), 'service-name-'));
const file = join(dir, 'sidecar.yaml');
const config = (serviceName: string) => `
server: { port: 0, host: 127.0.0.1, drainDelay: 0s, auth: { anonymousRateLimit: 10000/1m } }
telemetry: { serviceName: "${serviceName}" }
checks: []
`;
const lines: string[] = [];
let sidecar: Sidecar | undefined;

before(() => writeFileSync(file, config('alpha-shop')));
after(async () => {
  await sidecar?.shutdown({ drain: false });
  rmSync(dir, { recursive: true, force: true });
});

const title = async (port: number) => /<h1>(.*?)<\/h1>/.exec((await call(port, 'GET', '/')).text)?.[1];

describe('telemetry.serviceName (issue 14.3)', () => {
  it('a reload that changes it says "after a restart", and the page keeps the old name until then', async () => {
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
    sidecar = new Sidecar(loadConfigFile(file), logger);
    const port = await sidecar.start();
    assert.equal(await title(port), 'alpha-shop health');
    const reloader = new ConfigReloader({ file, target: sidecar, logger, watch: false, sighup: false, load: (f) => loadConfigFile(f) });
    writeFileSync(file, config('beta-shop'));
    const outcome = await reloader.reload('sighup');
    assert.equal(outcome.status, 'applied');
    assert.equal(sidecar.config.telemetry.serviceName, 'beta-shop', 'the new config is in place');
    const warning = lines.map((l) => JSON.parse(l) as { msg: string; settings?: string[] }).find((l) => l.settings?.includes('telemetry'));
    assert.ok(warning, `a log line names telemetry as restart-only (${lines.length} lines)`);
    assert.match(warning.msg, /takes effect after a restart/);
    // …and what the log says is what happens
    assert.equal(await title(port), 'alpha-shop health');
    reloader.stop();
  });

  it('a serviceName read with ${file:…} is a secret: the page shows the default name', async () => {
    const secretFile = join(dir, 'name');
    writeFileSync(secretFile, 'payments-eu-internal-7f3a\n');
    writeFileSync(file, config(`\${file:${secretFile}}`));
    const logger = createLogger({ level: 'info', destination: { write: () => undefined } });
    const loaded = loadConfigFile(file);
    assert.equal(loaded.telemetry.serviceName, 'payments-eu-internal-7f3a', 'the loader read the file');
    const other = new Sidecar(loaded, logger);
    const port = await other.start();
    try {
      const page = (await call(port, 'GET', '/')).text;
      assert.equal(await title(port), 'health-sidecar health');
      assert.ok(!page.includes('payments-eu-internal-7f3a'));
    } finally {
      await other.shutdown({ drain: false });
    }
  });
});
