/**
 * Stand-ins for everything the sample configs and the docs' examples talk to,
 * and a runner that starts the compiled CLI on such a config and waits until
 * it is ready.
 *
 * - The sample app podinfo: test/helpers/podinfo.ts (answers as podinfo 6.7.1).
 * - Redis and PostgreSQL: the real ones (REDIS_URL, DATABASE_URL of the test
 *   environment); a Redis or PostgreSQL URL in a config is replaced whole, since
 *   its user, password and database are placeholders for yours.
 * - The OTLP collector: test/helpers/otlp-receiver.ts.
 * - The `*.example.com` endpoints of the monitor examples are placeholders for
 *   your endpoints; each gets its own HTTPS server (certificate from a CA made
 *   for the run, trusted by the child through NODE_EXTRA_CA_CERTS) answering as
 *   a healthy endpoint of its kind: an HTML page, a JSON health document
 *   (`{"status":"UP"}`, as Spring Boot Actuator answers), the Atlassian
 *   Statuspage API v2 `status.json` document, a redirect to a docs page; a
 *   webhook receiver records what is POSTed. `tcp://` targets get a listener
 *   that accepts connections.
 *
 * `point()` rewrites every `scheme://host[:port]` of a text to its stand-in
 * and throws, naming the host, when a target has none — so a sample or doc
 * example that talks to something new fails with a clear message instead of
 * probing the network.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { makeCa, makeServerCert } from '../helpers/certs';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { startPodinfo, type PodinfoStandIn } from '../helpers/podinfo';
import { DATABASE_URL, freePort, REDIS_URL } from '../helpers/servers';
import { startCli, type CliProcess } from '../telemetry/support';
import { ensureBuilt } from '../helpers/paths';
import { get } from '../helpers/http';

type Handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, body: string) => void;

const html: Handler = (req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(req.method === 'HEAD' ? undefined : '<!doctype html><title>Example</title><p>Example page</p>\n');
};
/** Spring Boot Actuator's /actuator/health answer (the common "status" document). */
const healthJson: Handler = (_req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/vnd.spring-boot.actuator.v3+json' });
  res.end('{"status":"UP"}');
};
/** Atlassian Statuspage API v2 GET /api/v2/status.json */
const statuspage: Handler = (_req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify({ page: { id: 'kctbh9vrtdwd', name: 'Example', url: 'https://status.example.com', time_zone: 'Etc/UTC', updated_at: '2030-01-01T00:00:00.000Z' }, status: { indicator: 'none', description: 'All Systems Operational' } }));
};
/** A docs site that redirects / to its default language (followRedirects: true follows it). */
const docsSite: Handler = (req, res) => {
  if (req.url === '/') {
    res.writeHead(301, { Location: '/en/' });
    res.end();
  } else html(req, res, '');
};
const plain = (text: string): Handler => (req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(req.method === 'HEAD' ? undefined : text);
};

/** The placeholder endpoints of config/examples/standalone-monitor.yaml and the sharded-monitor overlay. */
const HTTPS_HOSTS: Record<string, Handler> = {
  'www.example.com': html,
  'api.example.com': healthJson,
  'docs.example.com': docsSite,
  'status.example.com': statuspage,
  'shop.example.com': html,
  'api.shop.example.com': healthJson,
  'blog.example.com': html,
  'login.example.com': healthJson,
  'payments.example.com': plain('pong\n'),
  'search.example.com': healthJson,
  'cdn.example.com': plain('User-agent: *\nDisallow:\n'),
  'feed.partner.example.net': healthJson,
};
const TCP_HOSTS = ['mail.example.com:587', 'mail.example.com:993', 'ldap.example.com:636', 'vpn.example.com:443'];

export interface WebhookDelivery {
  path: string;
  headers: import('node:http').IncomingHttpHeaders;
  body: string;
}

export interface StandIns {
  podinfo: PodinfoStandIn;
  otlp: OtlpReceiver;
  /** bodies POSTed to https://hooks.example.com (the webhook notification target) */
  webhooks: WebhookDelivery[];
  /** PEM file of the CA that signed the HTTPS stand-ins (the child trusts it) */
  caFile: string;
  /** add a route: `scheme://host:port` → `scheme://127.0.0.1:port` (or any replacement origin) */
  route(origin: string, to: string): void;
  /** every `scheme://host[:port]…` in `text` pointed at its stand-in; throws naming `where` and the host if one has none */
  point(text: string, where: string): string;
  close(): Promise<void>;
}

const DEFAULT_PORT: Record<string, number> = { http: 80, https: 443, redis: 6379, rediss: 6379, postgres: 5432, postgresql: 5432, grpc: 443, grpcs: 443 };

/** `scheme://[userinfo@]host[:port]` (userinfo and port may hold `${…}`) then the rest of the URL (path, query) up to a delimiter. */
const URL_RE = /\b([a-z][a-z0-9+.-]*):\/\/(?:(?:[^\s"'@/{}]|\$\{[^}]*\})*@)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d+|\$\{[^}]*\}))?([^\s"'}]*)/g;

export async function startStandIns(): Promise<StandIns> {
  const dir = mkdtempSync(join(tmpdir(), 'stand-ins-'));
  const ca = await makeCa(365, 'Stand-in CA');
  const cert = await makeServerCert(ca, 90); // long enough for a `tls.minValidity: 14d` example
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.cert);
  const closers: (() => Promise<void>)[] = [];
  const routes = new Map<string, string>();
  const wholeUrl = new Map<string, string>();

  const podinfo = await startPodinfo();
  closers.push(() => podinfo.close());
  for (const origin of ['http://127.0.0.1:9898', 'http://localhost:9898', 'http://app:9898', 'http://127.0.0.1:8080']) routes.set(origin, podinfo.url);

  const otlp = await startOtlpReceiver();
  closers.push(() => otlp.close());
  for (const origin of ['http://otel-collector.observability:4318', 'http://otel-collector:4318']) routes.set(origin, otlp.url);

  for (const origin of ['redis://redis:6379', 'redis://127.0.0.1:6379', 'redis://localhost:6379', 'redis://cache:6379']) wholeUrl.set(origin, REDIS_URL);
  for (const origin of ['postgres://db:5432', 'postgres://postgres:5432', 'postgres://127.0.0.1:5432', 'postgresql://db:5432']) wholeUrl.set(origin, DATABASE_URL);

  const webhooks: WebhookDelivery[] = [];
  const hosts: Record<string, Handler> = {
    ...HTTPS_HOSTS,
    'hooks.example.com': (req, res, body) => {
      webhooks.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(204);
      res.end();
    },
  };
  for (const [host, handler] of Object.entries(hosts)) {
    const server = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => handler(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    routes.set(`https://${host}:443`, `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    closers.push(() => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  }
  for (const hostPort of TCP_HOSTS) {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    routes.set(`tcp://${hostPort}`, `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    closers.push(() => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }));
  }

  const keyOf = (scheme: string, host: string, port: string | undefined) => `${scheme}://${host}:${port ?? DEFAULT_PORT[scheme] ?? ''}`;

  return {
    podinfo,
    otlp,
    webhooks,
    caFile,
    route(origin, to) {
      const u = /^([a-z][a-z0-9+.-]*):\/\/([^:/]+)(?::(\d+))?$/.exec(origin);
      if (!u) throw new Error(`route: not an origin: ${origin}`);
      routes.set(keyOf(u[1]!, u[2]!, u[3]), to);
    },
    point(text, where) {
      return text
        .split('\n')
        .map((line, i) => {
          if (/^\s*#/.test(line)) return line;
          return line.replace(URL_RE, (whole, scheme: string, host: string, port: string | undefined, rest: string) => {
            // the sidecar's own port through a variable (`tcp://127.0.0.1:${PORT:-9464}`): the runner sets PORT
            if (port?.startsWith('${') && (host === '127.0.0.1' || host === 'localhost')) return whole;
            const key = keyOf(scheme, host, port);
            const full = wholeUrl.get(key);
            if (full) return full;
            const to = routes.get(key);
            if (!to) throw new Error(`${where}:${i + 1}: ${scheme}://${host}${port ? `:${port}` : ''} has no stand-in (add one in test/deploy/stand-ins.ts, answering as that service does)`);
            return `${to}${rest}`;
          });
        })
        .join('\n');
    },
    async close() {
      for (const close of closers.reverse()) await close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ReadySidecar extends CliProcess {
  /** the sidecar's port on 127.0.0.1 */
  port: number;
  /** the port of its `--probe-port` (the kubelet listener), when the container passes one */
  probePort?: number;
}

/**
 * Run `config` (YAML text as shipped) with the compiled CLI: every target
 * pointed at its stand-in, and only what a test harness must change —
 * `server.port` to a free port (and the sidecar's own `127.0.0.1:9464` /
 * `${PORT}` with it; `server.grpcPort` too when set), `server.host`
 * 127.0.0.1, `server.drainDelay` 0s.
 * Resolves once `/readyz` answers 200; rejects with `/readyz?verbose` and the
 * log when it does not within `timeoutMs`.
 */
export async function runUntilReady(standIns: StandIns, where: string, config: string, env: Record<string, string>, timeoutMs = 30_000, flags: string[] = []): Promise<ReadySidecar> {
  const cli = await runPointed(standIns, where, config, env, flags);
  const port = cli.port;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = await get(port, '/readyz').catch(() => undefined);
    if (ready?.status === 200) return cli;
    if (cli.child.exitCode !== null || Date.now() > deadline) {
      const verbose = await get(port, '/readyz?verbose').catch((err: Error) => ({ status: 0, body: err.message }));
      cli.kill();
      throw new Error(`${where}: /readyz never answered 200 (last: ${ready?.status ?? 'no answer'}, exit ${cli.child.exitCode}); /readyz?verbose:\n${verbose.body}\nlog:\n${cli.lines.slice(-30).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The same start as runUntilReady, without waiting for ready (resolves once it listens). */
export async function runPointed(standIns: StandIns, where: string, config: string, env: Record<string, string>, flags: string[] = []): Promise<ReadySidecar> {
  ensureBuilt();
  const port = await freePort();
  standIns.route('http://127.0.0.1:9464', `http://127.0.0.1:${port}`);
  standIns.route('tcp://127.0.0.1:9464', `tcp://127.0.0.1:${port}`);
  const doc = parseDocument(standIns.point(config, where));
  if (doc.errors.length) throw new Error(`${where}: ${doc.errors[0]!.message}`);
  doc.setIn(['server', 'port'], port);
  doc.setIn(['server', 'host'], '127.0.0.1');
  doc.setIn(['server', 'drainDelay'], '0s');
  if (doc.hasIn(['server', 'grpcPort'])) doc.setIn(['server', 'grpcPort'], await freePort());
  const childEnv = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, standIns.point(v, `${where} env ${k}`)]));
  // the container's options after its config file, as shipped; a --probe-port moves to a free port
  const args = [...flags];
  const probeFlag = args.indexOf('--probe-port');
  const probePort = probeFlag >= 0 ? await freePort() : undefined;
  if (probePort !== undefined) args[probeFlag + 1] = String(probePort);
  const cli = await startCli(doc.toString(), { ...childEnv, PORT: String(port), NODE_EXTRA_CA_CERTS: standIns.caFile }, { args });
  return { ...cli, port, ...(probePort === undefined ? {} : { probePort }) };
}
