/**
 * The kubelet's own listener (`server.probeListener`, issue 14.2): a second
 * port that serves only the kubelet paths — `/livez`, `/readyz`,
 * `/startupz`, their `/health/*` aliases, per-check forms and `server.paths`
 * aliases, `/-/healthy` — from the same health snapshot as the main port.
 * Kubernetes probes can target it, so no flood of the main port can make the
 * pod restart or go unready.
 *
 * Two ways to serve it (docs/security.md, "Overload: the kubelet paths
 * first", has the measurements that chose them):
 *  - `thread: true` (the default): in a worker thread (kubelet-worker.ts)
 *    with its own event loop. The main thread posts the table of answers
 *    (probes.ts `probeTable`) on every snapshot change, on drain and on
 *    reload; the thread answers from it whatever the main loop is doing.
 *  - `thread: false`: a second server on the main event loop, routed like
 *    the main port (same fast path, same routes). It separates the ports
 *    (a network policy can open only this one to the kubelet) but shares
 *    the loop: a flood of the main port still delays it.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Identity } from './auth';
import { createHttpServer, DEFAULT_LIMITS, Router, type RequestMetrics, type ServerLimits } from './app';
import { createProbeFastPath, probePaths, probeTable, registerProbeRoutes } from './probes';
import type { HealthView } from './view';
import type { IncomingMessage } from 'node:http';

export interface KubeletListenerOptions {
  host: string;
  /** 0: any free port */
  port: number;
  /** serve from a worker thread (true) or from the main event loop */
  thread: boolean;
  view: HealthView;
  /** showDetails: always (the answers to an anonymous client carry the failure messages) */
  anonymousDetails: () => boolean;
  /** server.paths: extra path → built-in path */
  extraPaths: () => ReadonlyMap<string, string>;
  /** calls the listener on every health store change; returns the unsubscribe */
  subscribe: (listener: () => void) => () => void;
  /** the main listener, where the thread forwards what its table does not hold */
  main: { host: string; port: number };
  identify: (req: IncomingMessage) => Identity;
  logger: Logger;
  metrics?: RequestMetrics;
  limits?: Partial<ServerLimits>;
  /** thread: how often the main thread says it is alive (default 1 s) */
  heartbeatMs?: number;
  /** thread: after how long without a heartbeat every answer is 503 (default 10 s: a loop that stalls that long is stuck, not busy) */
  staleAfterMs?: number;
}

/** workerData of the thread */
export interface KubeletThreadData {
  host: string;
  port: number;
  forward: { host: string; port: number };
  limits: ServerLimits;
  /** no heartbeat for this long: the table's answers become 503 (the main loop is stuck) */
  staleAfterMs: number;
}

/** main → thread */
export type ToKubeletThread =
  | { type: 'table'; answers: [target: string, status: number, body: string, route: string, group: string][]; exact: string[]; prefixes: string[] }
  | { type: 'beat' }
  | { type: 'close'; graceMs: number };

/** thread → main */
export type FromKubeletThread =
  | { type: 'listening'; port: number }
  | { type: 'error'; code?: string; message: string }
  /** the durations (s) of its answers since the last post, one array per (method, route, status) */
  | { type: 'records'; groups: [method: string, route: string, status: number, seconds: Float64Array][] };

export interface KubeletListener {
  readonly port: number;
  /** the snapshot may have changed without a store change (drain) or the config was reloaded */
  refresh(): void;
  close(): Promise<void>;
}

export function startKubeletListener(options: KubeletListenerOptions): Promise<KubeletListener> {
  return options.thread ? startThread(options) : startOnMainLoop(options);
}

/** the main listener as seen from this host: a wildcard address is reached on loopback */
function reachable(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host.replace(/^\[(.*)\]$/, '$1');
}

async function startOnMainLoop(options: KubeletListenerOptions): Promise<KubeletListener> {
  const router = new Router();
  registerProbeRoutes(router, options.view);
  router.setAliases(options.extraPaths());
  const server: Server = createHttpServer({
    router,
    identify: options.identify,
    fastPath: createProbeFastPath({ health: options.view.health, anonymousDetails: options.anonymousDetails }, () => router.extraPaths, options.metrics),
    logger: options.logger,
    metrics: options.metrics,
    limits: options.limits,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    refresh: () => void router.setAliases(options.extraPaths()),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/** the thread's script: compiled next to this module, or (tests under tsx) its TypeScript source */
function threadScript(): { script: string; eval: boolean } {
  const compiled = join(__dirname, 'kubelet-worker.js');
  if (existsSync(compiled)) return { script: compiled, eval: false };
  const source = join(__dirname, 'kubelet-worker.ts');
  // a bundle that left the thread's file out would otherwise fail on a missing 'tsx'
  if (!existsSync(source)) throw new Error(`the kubelet listener's thread script is missing: ${compiled} must ship beside ${__filename}`);
  return { script: `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(source)});`, eval: true };
}

/**
 * The thread's V8 heap is kept small: it holds the answer table and a few
 * sockets. (Its young generation is what RSS sees first: V8's default
 * semi-space would be most of the thread's cost.)
 */
const THREAD_RESOURCE_LIMITS = { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2, stackSizeMb: 1 };

async function startThread(options: KubeletListenerOptions): Promise<KubeletListener> {
  const { script, eval: isEval } = threadScript();
  const data: KubeletThreadData = {
    host: options.host,
    port: options.port,
    forward: { host: reachable(options.main.host), port: options.main.port },
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    staleAfterMs: options.staleAfterMs ?? 10_000,
  };
  const worker = new Worker(script, { eval: isEval, workerData: data, resourceLimits: THREAD_RESOURCE_LIMITS, env: {}, stdout: false, stderr: false, name: 'kubelet-listener' });
  let closing = false;
  let lastPosted = '';
  const publish = () => {
    const extra = options.extraPaths();
    const table = probeTable(options.view.health, extra, options.anonymousDetails());
    const { exact, prefixes } = probePaths(extra);
    const answers = [...table].map(([target, a]) => [target, a.status, a.body, a.route, a.group] as [string, number, string, string, string]);
    // an unchanged table (a run that moved the generation but no answer) is not posted again
    const key = JSON.stringify([answers, exact]);
    if (key === lastPosted) return;
    lastPosted = key;
    worker.postMessage({ type: 'table', answers, exact, prefixes } satisfies ToKubeletThread);
  };
  const bound = new Map<string, ReturnType<RequestMetrics['bind']>>();
  worker.on('message', (message: FromKubeletThread) => {
    if (message.type !== 'records' || !options.metrics) return;
    for (const [method, route, status, seconds] of message.groups) {
      const key = `${method} ${route} ${status}`;
      let recorder = bound.get(key);
      if (!recorder) bound.set(key, (recorder = options.metrics.bind(method, route, status)));
      for (const s of seconds) recorder.record(s);
    }
  });
  publish();
  const port = await new Promise<number>((resolve, reject) => {
    const onMessage = (message: FromKubeletThread) => {
      if (message.type === 'listening') {
        worker.off('message', onMessage);
        worker.off('error', reject);
        resolve(message.port);
      } else if (message.type === 'error') {
        void worker.terminate();
        reject(Object.assign(new Error(message.message), { code: message.code }));
      }
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
  const unsubscribe = options.subscribe(publish);
  // a change while the thread was starting (a check's first run, typically) came before the subscription
  publish();
  const heartbeat = setInterval(() => worker.postMessage({ type: 'beat' } satisfies ToKubeletThread), options.heartbeatMs ?? 1000);
  heartbeat.unref();
  worker.on('error', (err) => options.logger.error({ err }, 'the kubelet listener thread failed: the kubelet port no longer answers'));
  worker.on('exit', (code) => {
    if (!closing) options.logger.error({ code }, 'the kubelet listener thread exited: the kubelet port no longer answers');
  });
  return {
    port,
    refresh: publish,
    close: async () => {
      if (closing) return;
      closing = true;
      unsubscribe();
      clearInterval(heartbeat);
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ type: 'close', graceMs: 1000 } satisfies ToKubeletThread);
      await exited;
    },
  };
}
