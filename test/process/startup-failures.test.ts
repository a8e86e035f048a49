/**
 * Start-up failures through the compiled CLI (`node dist/cli.js run`): each
 * says what could not start and where, in words, on stderr and in the fatal
 * log line, with the right exit code — never `[object Object]`, never a stack.
 *  - server.port already taken by another process → exit 1
 *  - server.grpcPort already taken → exit 1, and the HTTP port is released
 *  - server.probeListener.port already taken (its thread or the main loop) → exit 1, and the HTTP port is released
 *  - the config file unreadable (missing, a directory) → exit 2
 *  - a TLS file that is not PEM, or a key that does not belong to its cert → exit 2, FILE:LINE:COL
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeCa, makeClientCert } from '../helpers/certs';
import { freePort } from '../helpers/servers';
import { childEnv } from '../telemetry/support';
import { CLI, ensureBuilt, ROOT } from '../helpers/paths';

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI to its exit (every case here must exit on its own). */
function runCli(args: string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv({ OTEL_TRACES_EXPORTER: 'none' }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI did not exit:\n${stdout}${stderr}`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A listener owned by this test process on host:port (the "other instance"). */
function occupy(host: string, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const closeServer = (server: net.Server) => new Promise<void>((resolve) => server.close(() => resolve()));

function fatalRecord(stdout: string): Record<string, unknown> {
  const fatal = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((r) => r.level === 'fatal');
  assert.ok(fatal, `no fatal log line in:\n${stdout}`);
  return fatal;
}

describe('start-up failures through the compiled CLI', () => {
  let dir: string;
  const write = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  before(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'startup-failures-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('server.port in use: "port N on 0.0.0.0 is already in use (EADDRINUSE)", exit 1', async () => {
    const port = await freePort();
    const other = await occupy('0.0.0.0', port);
    try {
      const file = write('port.yaml', `server:\n  port: ${port}\n  host: 0.0.0.0\nchecks:\n  - name: self\n    kind: tcp\n    url: tcp://127.0.0.1:${port}\n`);
      const result = await runCli(['run', '--config', file]);
      const expected = `port ${port} on 0.0.0.0 is already in use (EADDRINUSE)`;
      assert.equal(result.code, 1, result.stdout + result.stderr);
      assert.equal(result.stderr, `health-sidecar: could not start: ${expected}\n`);
      const fatal = fatalRecord(result.stdout);
      assert.equal(fatal.msg, `could not start: ${expected}`);
      assert.deepEqual(fatal.err, { type: 'StartupError', message: expected, code: 'EADDRINUSE' });
      assert.doesNotMatch(result.stdout + result.stderr, /object Object|\n\s+at /);
    } finally {
      await closeServer(other);
    }
  });

  it('server.grpcPort in use: names the gRPC port, exit 1, and the HTTP port it had opened is closed again', async () => {
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const other = await occupy('127.0.0.1', grpcPort);
    try {
      const file = write('grpc.yaml', `server:\n  port: ${httpPort}\n  grpcPort: ${grpcPort}\n  host: 127.0.0.1\nchecks:\n  - name: self\n    kind: tcp\n    url: tcp://127.0.0.1:${httpPort}\n`);
      const result = await runCli(['run', '--config', file]);
      const expected = `gRPC port (server.grpcPort) ${grpcPort} on 127.0.0.1 is already in use (EADDRINUSE)`;
      assert.equal(result.code, 1, result.stdout + result.stderr);
      // grpc-js logs its own line ("E No address added …") to stderr first; ours is the last line
      assert.equal(result.stderr.trimEnd().split('\n').at(-1), `health-sidecar: could not start: ${expected}`);
      assert.equal(fatalRecord(result.stdout).msg, `could not start: ${expected}`);
      assert.doesNotMatch(result.stdout + result.stderr, /object Object/);
      // the process is gone, and so is its HTTP listener: the port can be taken again
      await closeServer(await occupy('127.0.0.1', httpPort));
    } finally {
      await closeServer(other);
    }
  });

  for (const thread of [true, false]) {
    it(`server.probeListener.port in use (thread: ${thread}): names the probe port, exit 1, and the HTTP port it had opened is closed again`, async () => {
      const [httpPort, probePort] = [await freePort(), await freePort()];
      const other = await occupy('127.0.0.1', probePort);
      try {
        const file = write(`probe-${thread}.yaml`, `server:\n  port: ${httpPort}\n  probeListener: { port: ${probePort}, thread: ${thread} }\n  host: 127.0.0.1\nchecks:\n  - name: self\n    kind: tcp\n    url: tcp://127.0.0.1:${httpPort}\n`);
        const result = await runCli(['run', '--config', file]);
        const expected = `probe port (server.probeListener.port) ${probePort} on 127.0.0.1 is already in use (EADDRINUSE)`;
        assert.equal(result.code, 1, result.stdout + result.stderr);
        assert.equal(result.stderr, `health-sidecar: could not start: ${expected}\n`);
        assert.equal(fatalRecord(result.stdout).msg, `could not start: ${expected}`);
        await closeServer(await occupy('127.0.0.1', httpPort));
      } finally {
        await closeServer(other);
      }
    });
  }

  it('config file missing or not a file: FILE: cannot read config file, exit 2', async () => {
    const missing = join(dir, 'no-such.yaml');
    const gone = await runCli(['run', '--config', missing]);
    assert.equal(gone.code, 2);
    assert.equal(gone.stderr, `${missing}: cannot read config file: no such file (ENOENT)\n${missing}: 1 problem(s); config not loaded\n`);
    const folder = await runCli(['run', '--config', dir]);
    assert.equal(folder.code, 2);
    assert.equal(folder.stderr, `${dir}: cannot read config file: is a directory (EISDIR)\n${dir}: 1 problem(s); config not loaded\n`);
    assert.equal(gone.stdout + folder.stdout, '', 'nothing starts, nothing is logged as running');
  });

  it('a truncated CA file, and a key of another certificate: FILE:LINE:COL per field, exit 2, the key never printed', async () => {
    const ca = await makeCa(30);
    const mine = await makeClientCert(ca, 30, 'mine');
    const theirs = await makeClientCert(ca, 30, 'theirs');
    // cut off in the middle, as a bad copy leaves it
    const notPem = write('ca.pem', ca.cert.slice(0, Math.floor(ca.cert.length / 2)));
    const certFile = write('client.crt', mine.cert);
    const wrongKey = write('other.key', theirs.key);
    const file = write(
      'tls.yaml',
      [
        'checks:',
        '  - name: api',
        '    kind: http',
        '    url: https://127.0.0.1:8443/healthz',
        '    tls:',
        `      ca: \${file:${notPem}}`,
        `      cert: \${file:${certFile}}`,
        `      key: \${file:${wrongKey}}`,
        '',
      ].join('\n'),
    );
    const result = await runCli(['run', '--config', file]);
    assert.equal(result.code, 2, result.stdout + result.stderr);
    const lines = result.stderr.split('\n');
    assert.equal(lines.length, 4, result.stderr);
    assert.match(lines[0]!, new RegExp(`^${escape(file)}:6:11 checks\\[0\\]\\.tls\\.ca: certificate 1 of 1 is not a valid certificate \\(PEM routines: [a-z0-9 ]+\\); the value comes from file ${escape(notPem)}$`));
    assert.equal(lines[1], `${file}:8:12 checks[0].tls.key: does not belong to tls.cert (the public keys differ); the value comes from file ${wrongKey}`);
    assert.equal(lines[2], `${file}: 2 problem(s); config not loaded`);
    assert.equal(lines[3], '');
    const keyBody = theirs.key.split('\n')[1]!;
    assert.ok(keyBody.length > 20);
    assert.ok(!(result.stdout + result.stderr).includes(keyBody), 'the key is never printed');
    assert.equal(result.stdout, '');
  });
});
