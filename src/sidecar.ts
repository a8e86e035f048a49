/**
 * The composition root: config → checks (probe behind policy) → state →
 * endpoints. Owns the loops, the store and the HTTP server; applies a new
 * config in place (reload) and shuts down in order (drain, stop, close).
 */
import type { Server } from 'node:http';
import type { AddressInfo, BlockList } from 'node:net';
import type { Logger } from 'pino';
import { resolveExtraPaths } from './config/paths';
import type { CheckConfig, SidecarConfig } from './config/types';
import { publicServiceName } from './config/secrets';
import { HealthSnapshots } from './health/snapshot';
import { CheckRunner, type AttemptObserver } from './health/runner';
import { CheckLoop } from './health/scheduler';
import { HealthStore, type RunResult } from './health/state';
import { createProbe } from './probes/registry';
import { CertExpiryRegistry } from './probes/tls-expiry';
import { Redactor } from './redact';
import { OverloadGate } from './server/overload';
import { createHttpServer, Router, type RequestContext, type RequestMetrics } from './server/app';
import { registerAdminRoutes, type AdminTarget } from './server/admin';
import { Authenticator } from './server/auth';
import { createRateLimitGuard, networkList, type RateLimitGuard } from './server/ratelimit';
import { registerHealthRoutes } from './server/health';
import { registerStatusRoutes, type StatusSource } from './server/status';
import { IncidentLog } from './health/incidents';
import { LatencyStats } from './health/stats';
import type { DeadLetter } from './notify/dead-letters';
import { NotificationService } from './notify/service';
import { RedisHistory } from './persist/redis';
import { UptimeTracker } from './persist/uptime';
import { PostgresUptimeStore } from './store/uptime-postgres';
import type { GrpcHealthServer } from './server/grpc-health';
import { startKubeletListener, type KubeletListener } from './server/kubelet-listener';
import { createProbeFastPath, registerProbeRoutes } from './server/probes';
import { createUptimeView, registerBadgeRoutes, type UptimeView } from './server/uptime';
import { trackRequests, type RequestTracker } from './server/drain';
import { registerMetricsRoute } from './server/metrics-route';
import type { HealthView } from './server/view';
import { listenFailure } from './startup';
import type { SidecarHooks, TelemetryOwner } from './telemetry/hooks';
import { inRunContext, setLogRedactor } from './telemetry/log';
import { VERSION } from './version';

export type { SidecarHooks } from './telemetry/hooks';

export class Sidecar implements StatusSource, AdminTarget, TelemetryOwner {
  readonly store = new HealthStore();
  /** the one health snapshot every endpoint, the status page, gRPC health and the metrics read */
  readonly health = new HealthSnapshots(this.store);
  /** the certificates this sidecar's TLS probes saw (the healthcheck.tls.cert_expiry gauge) */
  readonly certExpiry = new CertExpiryRegistry();
  readonly router = new Router();
  readonly startedAt = Date.now();
  /** the name shown and exported (never a secret one); telemetry settings apply on restart, so this does too */
  readonly serviceName: string;
  private readonly loops = new Map<string, CheckLoop>();
  /** latency statistics per check (every run) */
  readonly stats: LatencyStats;
  /** failing streaks and DOWN periods */
  readonly incidents: IncidentLog;
  /** messages on state changes, with their dead letters */
  readonly notifications: NotificationService;
  /** uptime history per check (docs/uptime.md), persisted with state.redis */
  readonly uptime: UptimeTracker;
  /** what /health/stats, /health/{check}, the badges and the status page read of it */
  readonly uptimeView: UptimeView;
  /** incidents and dead letters kept in Redis (state.redis), when configured */
  private readonly history: RedisHistory<DeadLetter> | undefined;
  private server: Server | undefined;
  private requests: RequestTracker | undefined;
  /** grpc.health.v1 on server.grpcPort, when configured */
  private grpcHealth: GrpcHealthServer | undefined;
  /** the kubelet paths on server.probeListener.port, when configured */
  private kubelet: KubeletListener | undefined;
  /** what the probe routes read (the main port's and the kubelet listener's) */
  private readonly view: HealthView;
  private current: SidecarConfig;
  private redactorValue: Redactor;
  private auth: Authenticator;
  private stopping: Promise<void> | undefined;
  /** per-key and per-client-IP rate limits, run before routing (kubelet probe paths exempt) */
  readonly rateLimit: RateLimitGuard;

  constructor(
    config: SidecarConfig,
    readonly logger: Logger,
    private readonly hooks: SidecarHooks = {},
  ) {
    this.current = config;
    this.serviceName = publicServiceName(config);
    this.redactorValue = new Redactor(config.secrets);
    setLogRedactor(this.logger, this.redactorValue);
    this.auth = new Authenticator(config.server.auth.keys, config.server.auth.jwt !== undefined);
    this.store.onTransition((t) => {
      const level = t.to === 'DOWN' ? 'warn' : 'info';
      // correlated with the run that caused it (stdout trace_id/span_id, the OTLP log record's ids)
      inRunContext(t.run, () => this.logger[level]({ check: t.check, kind: t.kind, from: t.from, to: t.to, reason: t.message }, `check ${t.check} ${t.from} → ${t.to}`));
    });
    const log = (level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string) => this.logger[level](fields, message);
    // monitor modes with a store keep the uptime history there (every replica's, shared); else state.redis, else memory
    this.uptime = new UptimeTracker({
      store: config.store ? new PostgresUptimeStore(config.store.postgres) : undefined,
      storeName: 'store.postgres',
      redis: config.state.redis ? { url: config.state.redis, keyPrefix: config.state.keyPrefix } : undefined,
      log,
    });
    this.uptimeView = createUptimeView({
      health: this.health,
      checkConfig: (name) => this.current.checks.find((c) => c.name === name),
      history: this.uptime.history,
      canSeeDetails: (ctx) => this.canSeeDetails(ctx),
      detailsArePublic: () => this.current.server.showDetails === 'always',
    });
    const view: HealthView = (this.view = {
      health: this.health,
      uptime: this.uptimeView,
      canSeeDetails: (ctx) => this.canSeeDetails(ctx),
      startedAt: this.startedAt,
      version: VERSION,
    });
    registerProbeRoutes(this.router, view);
    registerHealthRoutes(this.router, view);
    registerBadgeRoutes(this.router, this.uptimeView);
    // what the on-call engineer reads and is paged by; listeners only record in memory and queue
    const redactor = () => this.redactorValue;
    this.stats = new LatencyStats((name) => this.current.checks.find((c) => c.name === name)?.interval);
    this.incidents = new IncidentLog(config.state.maxIncidents, (list) => this.history?.saveIncidents(list));
    this.history = config.state.redis
      ? new RedisHistory<DeadLetter>({
          url: config.state.redis,
          keyPrefix: config.state.keyPrefix,
          redactor,
          log,
          onLoad: (stored) => {
            this.incidents.restore(stored.incidents);
            this.notifications.deadLetters.restore(stored.deadLetters, stored.dropped);
            this.notifications.restore(stored.outbox); // undelivered messages resume; what each target was told
            // what happened before Redis answered is written together with what it held
            this.history?.saveIncidents(this.incidents.list().reverse());
            const dead = this.notifications.listDead();
            this.history?.saveDeadLetters(dead.deadLetters, dead.dropped);
          },
        })
      : undefined;
    this.notifications = new NotificationService({
      targets: config.notifications,
      maxDeadLetters: config.state.maxDeadLetters,
      service: this.serviceName,
      redactor,
      currentState: (check) => this.store.get(check),
      openIncident: (check) => this.incidents.openFor(check)?.id ?? null,
      onDeadLettersChange: (letters, dropped) => this.history?.saveDeadLetters(letters, dropped),
      store: this.history,
      log,
      ...(hooks.notifyMetrics ? { metrics: hooks.notifyMetrics } : {}),
    });
    this.store.onRecord((name, run, state) => {
      this.stats.record(name, run);
      this.uptime.record(name, run);
      this.incidents.observeRun(name, run, state);
    });
    // debug: one line per probe run — the check, its outcome, how long the run took, how many
    // attempts — with the trace_id/span_id of that run
    this.store.onRecord((name, run, state) => {
      if (!this.logger.isLevelEnabled('debug')) return;
      const durationMs = Math.round(run.finishedAt - run.startedAt);
      inRunContext(run, () =>
        this.logger.debug(
          { check: name, outcome: run.outcome, durationMs, latencyMs: Math.round(run.latencyMs * 10) / 10, attempts: run.attempts, status: state.status, breaker: run.breaker, reason: run.message },
          `check ${name} run: ${run.outcome} in ${durationMs} ms, ${run.attempts} attempt(s)`,
        ),
      );
    });
    // one listener, so the incident exists before the message naming it is queued
    this.store.onTransition((t) => {
      const incident = this.incidents.observeTransition(t);
      this.notifications.notify(t, incident?.id ?? null);
    });
    registerStatusRoutes(this.router, this);
    this.rateLimit = createRateLimitGuard({
      keyRate: (name) => this.current.server.auth.keys.find((k) => k.name === name)?.rateLimit,
      anonymousRate: () => this.current.server.auth.anonymousRateLimit,
      metricsPath: () => (this.current.telemetry.prometheus.enabled ? this.current.telemetry.prometheus.path : undefined),
      metricsRate: () => this.current.server.auth.metricsRateLimit,
      scraperNetworks: () => this.scraperNetworks(),
      rejectInvalidKeys: () => this.auth.enabled,
    });
    registerAdminRoutes(this.router, this, { rateLimit: this.rateLimit });
    hooks.attach?.(this);
    if (hooks.metricsEndpoint) registerMetricsRoute(this.router, hooks.metricsEndpoint);
    this.router.setAliases(resolveExtraPaths(config.server.paths, config.telemetry.prometheus.path));
  }

  /** server.paths → built-in path (what the router and the probe fast path answer) */
  get extraPaths(): ReadonlyMap<string, string> {
    return this.router.extraPaths;
  }

  private scrapers: { from: readonly string[]; list: BlockList } | undefined;
  private scraperNetworks(): BlockList {
    const from = this.current.server.auth.scraperNetworks;
    if (this.scrapers?.from !== from) this.scrapers = { from, list: networkList(from) };
    return this.scrapers.list;
  }

  get config(): SidecarConfig {
    return this.current;
  }

  get redactor(): Redactor {
    return this.redactorValue;
  }

  get authenticator(): Authenticator {
    return this.auth;
  }

  canSeeDetails(ctx: RequestContext): boolean {
    const mode = this.current.server.showDetails;
    return mode === 'always' || (mode === 'when-authorized' && ctx.identity.kind === 'key');
  }

  /** Start the loops and the server; resolves with the bound port. */
  async start(): Promise<number> {
    // persisted incidents and dead letters, before any probe runs
    if (this.history && !(await this.history.start())) {
      this.logger.warn({ keyPrefix: this.current.state.keyPrefix }, 'state.redis not reachable at start: history starts in memory and is merged when Redis answers');
    }
    for (const skipped of this.current.skipped) this.logger.info({ check: skipped.name }, `check ${skipped.name} skipped: ${skipped.reason}`);
    // Known to the store (UNKNOWN, so probes answer 503) before the port opens; the loops
    // start once it listens, so a check of the sidecar's own port cannot race the listen.
    for (const check of this.current.checks) this.store.upsert(check);
    this.uptime.start(this.current.checks.map((c) => c.name));
    this.server = createHttpServer({
      router: this.router,
      identify: (req) => this.auth.identify(req),
      guard: this.rateLimit,
      fastPath: createProbeFastPath({ health: this.health, anonymousDetails: () => this.current.server.showDetails === 'always' }, () => this.extraPaths, this.hooks.requestMetrics),
      logger: this.logger,
      metrics: this.hooks.requestMetrics,
      overload: new OverloadGate(this.current.server.overload),
    });
    this.requests = trackRequests(this.server);
    const { port, host } = this.current.server;
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error) => reject(listenFailure(err, 'port', host, port));
      this.server!.once('error', failed);
      this.server!.listen(port, host, () => {
        this.server!.off('error', failed);
        resolve();
      });
    });
    for (const check of this.current.checks) this.addCheck(check);
    const { grpcPort } = this.current.server;
    if (grpcPort !== undefined) {
      try {
        // loaded only when server.grpcPort is set (@grpc/grpc-js is heavy)
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { GrpcHealthServer } = require('./server/grpc-health') as typeof import('./server/grpc-health');
        this.grpcHealth = await GrpcHealthServer.start({ host, port: grpcPort, store: this.store, health: this.health });
      } catch (err) {
        const server = this.server;
        await new Promise<void>((resolve) => server.close(() => resolve()));
        throw listenFailure(err, 'gRPC port (server.grpcPort)', host, grpcPort);
      }
      this.logger.info({ grpcPort: this.grpcHealth.port }, `gRPC health (grpc.health.v1) on ${host}:${this.grpcHealth.port}`);
    }
    const { probeListener } = this.current.server;
    if (probeListener) {
      try {
        this.kubelet = await startKubeletListener({
          host,
          port: probeListener.port,
          thread: probeListener.thread,
          view: this.view,
          anonymousDetails: () => this.current.server.showDetails === 'always',
          extraPaths: () => this.extraPaths,
          subscribe: (listener) => this.store.onChange(listener),
          main: { host, port: (this.server.address() as AddressInfo).port },
          identify: (req) => this.auth.identify(req),
          logger: this.logger,
          metrics: this.hooks.requestMetrics,
        });
      } catch (err) {
        const server = this.server;
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await this.grpcHealth?.close();
        throw listenFailure(err, 'probe port (server.probeListener.port)', host, probeListener.port);
      }
      this.logger.info({ probePort: this.kubelet.port, thread: probeListener.thread }, `kubelet paths also on ${host}:${this.kubelet.port}${probeListener.thread ? ' (own thread)' : ''}`);
    }
    const bound = (this.server.address() as AddressInfo).port;
    const { shard } = this.current;
    if (shard) this.logger.info({ shard }, `shard ${shard.index} of ${shard.count} (index from ${shard.indexFrom}): probing ${shard.owned} of ${shard.total} check(s)`);
    this.logger.info({ port: bound, host, checks: this.current.checks.map((c) => c.name) }, `listening on ${host}:${bound} with ${this.current.checks.length} check(s)`);
    return bound;
  }

  /** bound port of the gRPC health server (undefined when server.grpcPort is not set) */
  get grpcPort(): number | undefined {
    return this.grpcHealth?.port;
  }

  /** bound port of the kubelet listener (undefined when server.probeListener is not set) */
  get probePort(): number | undefined {
    return this.kubelet?.port;
  }

  get port(): number | undefined {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address.port : undefined;
  }

  loop(name: string): CheckLoop | undefined {
    return this.loops.get(name);
  }

  /** Run a check now (single flight with any run in progress). */
  runNow(name: string): Promise<RunResult> | undefined {
    return this.loops.get(name)?.runNow('manual');
  }

  /** Close the breaker, clear counters, bump the version. */
  reset(name: string): boolean {
    const loop = this.loops.get(name);
    if (!loop) return false;
    loop.runner.resetPolicy();
    this.store.reset(name);
    return true;
  }

  /**
   * Apply a new, already validated config. Checks kept by name with the same
   * definition keep their state, loop and connections; changed ones are
   * rebuilt (state kept when the kind is unchanged); removed ones are closed.
   */
  async applyConfig(next: SidecarConfig): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const before = Object.assign(new Map(this.current.checks.map((c) => [c.name, c])), { redis: this.current.state.redis });
    const after = new Map(next.checks.map((c) => [c.name, c]));
    const added: string[] = [];
    const changed: string[] = [];
    const removed: string[] = [];
    this.current = next;
    this.redactorValue = new Redactor(next.secrets);
    setLogRedactor(this.logger, this.redactorValue);
    this.auth = new Authenticator(next.server.auth.keys, next.server.auth.jwt !== undefined);
    this.router.setAliases(resolveExtraPaths(next.server.paths, next.telemetry.prometheus.path));
    this.kubelet?.refresh(); // aliases and showDetails as reloaded
    for (const [name] of before) {
      if (!after.has(name)) {
        removed.push(name);
        await this.removeCheck(name);
      }
    }
    for (const [name, check] of after) {
      const old = before.get(name);
      if (!old) {
        added.push(name);
        this.addCheck(check);
      } else if (old !== check && JSON.stringify(old) !== JSON.stringify(check)) {
        changed.push(name);
        await this.stopLoop(name);
        this.addCheck(check);
      }
    }
    // notification targets and bounds; checks that are gone close their incidents
    this.notifications.configure(next.notifications, this.serviceName, next.state.maxDeadLetters);
    this.incidents.setMax(next.state.maxIncidents);
    const known = new Set(next.checks.map((c) => c.name));
    this.incidents.closeMissing(known);
    for (const name of this.stats.names()) if (!known.has(name)) this.stats.remove(name);
    this.uptime.setChecks([...known]);
    if (next.state.redis !== before.redis) this.logger.warn('state.redis changed: takes effect on restart');
    return { added, changed, removed };
  }

  /**
   * SIGTERM, in this order (docs/operations.md, "Shutdown"):
   *   1. readiness fails at once (/readyz 503, gRPC NOT_SERVING), everything
   *      else keeps being served for drainDelay, so the endpoints drop the pod;
   *   2. the server stops accepting; requests in flight are answered (never
   *      cut) until the drain deadline (drainTimeout after drainDelay);
   *   3. the loops stop; queued notifications and persistence writes are
   *      flushed within what is left of the deadline;
   *   4. (cli.ts) telemetry is flushed, bounded.
   */
  shutdown(options: { drain?: boolean } = {}): Promise<void> {
    this.stopping ??= this.doShutdown(options.drain ?? true);
    return this.stopping;
  }

  private async doShutdown(drain: boolean): Promise<void> {
    this.health.startDraining();
    this.grpcHealth?.refresh(); // Watch streams hear NOT_SERVING for ready now
    this.kubelet?.refresh(); // so does the kubelet listener's thread
    const delay = drain ? this.current.server.drainDelay : 0;
    const timeout = this.current.server.drainTimeout;
    this.logger.info({ drainDelayMs: delay, drainTimeoutMs: timeout }, 'shutting down: readiness now fails; draining');
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const deadline = Date.now() + timeout;
    const left = () => Math.max(0, deadline - Date.now());
    if (this.requests) {
      this.logger.info({ inFlight: this.requests.inFlight }, `no new connections; waiting for ${this.requests.inFlight} request(s) in flight`);
      const { cut } = await this.requests.close(deadline);
      if (cut > 0) this.logger.warn({ cut }, `drain deadline reached: ${cut} request(s) still unanswered were cut`);
    }
    await Promise.all([...this.loops.keys()].map((name) => this.removeCheck(name, false)));
    await this.notifications.close(Math.min(2000, left())); // queued notifications get a bounded grace; the rest become dead letters
    await this.history?.close(left());
    await this.uptime.close(); // the last runs' deltas are written
    await this.grpcHealth?.close();
    await this.kubelet?.close();
    this.logger.info('stopped');
  }

  private addCheck(check: CheckConfig): void {
    this.store.upsert(check);
    let loop: CheckLoop | undefined;
    const probe = createProbe(check, {
      redactor: this.redactorValue,
      certExpiry: this.certExpiry,
      ...(this.hooks.probeMetrics ? { metrics: this.hooks.probeMetrics } : {}),
      onConnectionLost: (reason) => {
        this.logger.debug({ check: check.name, reason }, 'connection lost; re-probing');
        loop?.nudge();
      },
    });
    const observer: AttemptObserver = {
      attemptFinished: (c, outcome, ms) => this.hooks.observer?.attemptFinished(c, outcome, ms),
      breakerChanged: (c, state) => {
        this.store.setBreaker(c.name, state);
        this.logger.info({ check: c.name, breaker: state }, `breaker of ${c.name} is ${state}`);
        this.hooks.observer?.breakerChanged?.(c, state);
      },
    };
    const runner = new CheckRunner(check, probe, this.redactorValue, observer);
    loop = new CheckLoop(runner, this.store);
    this.loops.set(check.name, loop);
    loop.start();
  }

  /** tests: wait for deliveries and writes */
  async settle(): Promise<void> {
    await this.notifications.idle();
    await this.history?.flush();
    await this.uptime.flush();
  }

  private async stopLoop(name: string): Promise<void> {
    const loop = this.loops.get(name);
    if (!loop) return;
    this.loops.delete(name);
    const stopped = loop.stop();
    await loop.runner.close(); // aborts a run in flight, then closes connections
    await stopped;
  }

  private async removeCheck(name: string, dropState = true): Promise<void> {
    await this.stopLoop(name);
    if (dropState) this.store.remove(name);
  }
}
