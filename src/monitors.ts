/**
 * Wiring of the monitors managed at run time (`store.postgres`, docs/api.md):
 * the effective check set is the file's checks plus the store's monitors,
 * applied through the Sidecar's reload path (`applyConfig`: kept checks keep
 * their state, new ones start probing, removed ones stop, their state and
 * incidents go). The store is read again on every change this replica makes,
 * on every NOTIFY from another replica, and every `store.resync` as a safety
 * net. With the store unreachable, probing goes on from memory; writes answer
 * 503 and the next successful read catches up.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { shardOf } from './config/shard';
import type { ApiScope } from './config/schema';
import type { SidecarConfig } from './config/types';
import { parseConfig } from './probes/registry';
import type { RunResult } from './health/state';
import { registerMonitorRoutes, type Caller, type FileCheckView } from './server/api/monitors';
import { requireKey, unauthorized } from './server/auth';
import type { RequestContext } from './server/app';
import { HttpError } from './server/respond';
import { fileContext, mergeMonitors, parseMonitor, readFileData, type FileContext } from './store/monitor-checks';
import { MonitorStore, StoreError, type MinuteAggregate, type StoredMonitor } from './store/monitor-store';
import type { Sidecar } from './sidecar';
import type { BearerVerifier } from './server/api/jwt';

type Applied = { added: string[]; changed: string[]; removed: string[] };

export class RuntimeMonitors {
  readonly store: MonitorStore;
  private file: SidecarConfig;
  private context: FileContext;
  private fileViews: FileCheckView[];
  private memory = new Map<string, StoredMonitor>();
  /** parsed monitor per name, reused while its version and the file context are unchanged */
  private parsed = new Map<string, { version: number; context: FileContext; config: SidecarConfig | undefined }>();
  private chain: Promise<unknown> = Promise.resolve();
  private resyncTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private notifyTimer: NodeJS.Timeout | undefined;
  private storeDown = false;
  private runs = new Map<string, Map<number, MinuteAggregate>>();
  private closed = false;

  constructor(
    private readonly sidecar: Sidecar,
    file: SidecarConfig,
    private readonly logger: Logger,
    private readonly verifier?: BearerVerifier,
  ) {
    this.file = file;
    this.context = fileContext(file.source);
    this.fileViews = this.readFileViews();
    const settings = file.store!;
    this.store = new MonitorStore({ url: settings.postgres, maxMonitors: settings.maxMonitors, log: (level, fields, message) => logger[level](fields, message) });
    registerMonitorRoutes(sidecar.router, {
      store: this.store,
      logger,
      get redactor() {
        return sidecar.redactor;
      },
      fileChecks: () => this.fileViews,
      monitors: () => this.memory,
      parse: (body) => parseMonitor(parseConfig, body, this.context),
      secretsOf: (body) => {
        const parsed = parseMonitor(parseConfig, body, this.context);
        return 'config' in parsed ? parsed.config.secrets : [];
      },
      changed: (name) => this.refresh([name]),
      state: (name) => sidecar.store.get(name),
      shardOf: (name, pin) => (this.file.shard ? (pin ?? shardOf(name, this.file.shard.count)) : undefined),
      caller: (req, ctx) => this.caller(req, ctx),
      writeRate: () => this.file.store!.writeRateLimit,
    });
    sidecar.store.onRecord((name, run) => {
      if (this.memory.has(name)) this.recordRun(name, run);
    });
  }

  /** the reloader's target: a new file config is applied with the monitors added */
  get reloadTarget(): { readonly config: SidecarConfig; applyConfig(next: SidecarConfig): Promise<Applied> } {
    const sidecar = this.sidecar;
    return {
      get config() {
        return sidecar.config;
      },
      applyConfig: (next) => {
        const before = this.file.store!;
        if (!next.store || next.store.postgres !== before.postgres) {
          this.logger.warn('store removed or store.postgres changed: takes effect on restart (the monitors of the running store stay)');
          next = { ...next, store: next.store ? { ...next.store, postgres: before.postgres } : before };
        }
        this.file = next;
        this.context = fileContext(next.source);
        this.fileViews = this.readFileViews();
        return this.apply();
      },
    };
  }

  /** Migrate, read the monitors, start probing them, and follow changes. */
  async start(): Promise<void> {
    try {
      const applied = await this.store.migrate();
      if (applied.length) this.logger.info({ migrations: applied }, `monitor store: applied migration(s) ${applied.join(', ')}`);
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      this.logger.warn({ reason: err.message }, 'monitor store not reachable at start: probing the file checks; monitors follow when it answers');
    }
    await this.resync();
    this.logger.info({ monitors: this.memory.size }, `monitor store: ${this.memory.size} monitor(s) loaded; following changes`);
    this.store.listen((name) => this.scheduleResync(name));
    const { resync } = this.file.store!;
    this.resyncTimer = setInterval(() => void this.resync(), resync);
    this.resyncTimer.unref();
    this.flushTimer = setInterval(() => void this.flushRuns(), 10_000);
    this.flushTimer.unref();
  }

  /** names NOTIFYed since the last refresh; undefined in it: read everything */
  private pending = new Set<string | undefined>();

  private scheduleResync(name: string | undefined): void {
    if (this.closed) return;
    this.pending.add(name);
    if (this.notifyTimer) return;
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = undefined;
      const names = [...this.pending];
      this.pending.clear();
      void (names.includes(undefined) ? this.resync() : this.refresh(names as string[]));
    }, 20);
  }

  /**
   * Read the named monitors again and apply if any changed (a write here, or
   * a NOTIFY from another replica, names the monitor; its own NOTIFY then
   * finds the version already known and applies nothing).
   */
  refresh(names: readonly string[]): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.closed) return;
      let changed = false;
      try {
        for (const name of names) {
          const row = await this.store.get(name);
          const known = this.memory.get(name);
          if (row && row.version !== known?.version) {
            this.memory.set(name, row);
            changed = true;
          } else if (!row && known) {
            this.memory.delete(name);
            changed = true;
          }
        }
      } catch (err) {
        if (!(err instanceof StoreError)) throw err;
        this.storeDown = true;
        return;
      }
      if (changed) await this.applyNow();
    });
    this.chain = run.catch((err) => this.logger.error({ err }, 'monitor refresh failed'));
    return run;
  }

  /** Read every monitor from the store and apply the effective set (serialised with other applies). */
  resync(): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.closed) return;
      let list: StoredMonitor[];
      try {
        list = await this.store.list();
      } catch (err) {
        if (!(err instanceof StoreError)) throw err;
        if (!this.storeDown) this.logger.warn({ reason: err.message }, 'monitor store not reachable: probing goes on with the monitors in memory; writes answer 503');
        this.storeDown = true;
        return;
      }
      if (this.storeDown) this.logger.info({ monitors: list.length }, 'monitor store reachable again: caught up');
      this.storeDown = false;
      const same = list.length === this.memory.size && list.every((m) => this.memory.get(m.name)?.version === m.version);
      this.memory = new Map(list.map((m) => [m.name, m]));
      if (!same || !this.applied) await this.applyNow(); // the periodic resync mostly finds nothing new
    });
    this.chain = run.catch((err) => this.logger.error({ err }, 'monitor resync failed'));
    return run;
  }

  private apply(): Promise<Applied> {
    const run = this.chain.then(() => this.applyNow());
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** applied at least once since start (the first resync always applies) */
  private applied = false;

  private async applyNow(): Promise<Applied> {
    this.applied = true;
    const configs: SidecarConfig[] = [];
    const fileNames = new Set(this.fileViews.map((f) => f.name));
    for (const [name, monitor] of this.memory) {
      if (fileNames.has(name)) continue; // the file wins (the API refuses such names; a file edit may add one later)
      let cached = this.parsed.get(name);
      if (!cached || cached.version !== monitor.version || cached.context !== this.context) {
        const result = parseMonitor(parseConfig, monitor.body, this.context);
        if ('problems' in result) this.logger.warn({ monitor: name, problems: result.problems }, `monitor ${name} is not valid with the current file (defaults/shard): not probed`);
        cached = { version: monitor.version, context: this.context, config: 'config' in result ? result.config : undefined };
        this.parsed.set(name, cached);
      }
      if (cached.config) configs.push(cached.config);
    }
    for (const name of this.parsed.keys()) if (!this.memory.has(name)) this.parsed.delete(name);
    for (const name of this.runs.keys()) if (!this.memory.has(name)) this.runs.delete(name);
    return this.sidecar.applyConfig(mergeMonitors(this.file, configs));
  }

  private readFileViews(): FileCheckView[] {
    const data = readFileData(this.file.source);
    const checks: unknown[] = !data ? this.file.checks : Array.isArray(data.checks) ? data.checks : [];
    return checks
      .filter((c): c is Record<string, unknown> => !!c && typeof c === 'object' && typeof (c as { name?: unknown }).name === 'string')
      .map((c) => ({ name: c.name as string, check: this.sidecar.redactor.value(c) as Record<string, unknown>, groups: (c.groups as string[] | undefined) ?? ['ready'] }));
  }

  private async caller(req: IncomingMessage, ctx: RequestContext): Promise<Caller> {
    const identity = ctx.identity;
    const jwt = this.file.server.auth.jwt;
    if (identity.kind === 'bearer' && this.verifier) return this.verifier.verify(identity.token);
    if (jwt && this.verifier && identity.kind !== 'key') {
      // a token that is no key: a bearer JWT
      const token = /^Bearer[ \t]+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)[ \t]*$/i.exec(String(req.headers.authorization ?? ''))?.[1];
      if (token) return this.verifier.verify(token);
    }
    if (!this.sidecar.authenticator.enabled && !jwt) throw new HttpError(403, 'api_disabled', 'the monitors API needs server.auth.keys or server.auth.jwt');
    if (identity.kind !== 'key') {
      if (!this.sidecar.authenticator.enabled) throw unauthorized(identity.kind === 'bearer' ? { kind: 'invalid' } : identity);
      requireKey(this.sidecar.authenticator, identity.kind === 'bearer' ? { kind: 'invalid' } : identity);
    }
    const name = (identity as { name: string }).name;
    const scopes = this.file.server.auth.keys.find((k) => k.name === name)?.scopes ?? [];
    return { actor: `key:${name}`, scopes: new Set<ApiScope>(scopes) };
  }

  private recordRun(name: string, run: RunResult): void {
    const minute = Math.floor(run.finishedAt / 60_000) * 60_000;
    let perMinute = this.runs.get(name);
    if (!perMinute) this.runs.set(name, (perMinute = new Map()));
    let agg = perMinute.get(minute);
    if (!agg) perMinute.set(minute, (agg = { minute, runs: 0, failures: 0, latencySumMs: 0, latencyMaxMs: 0 }));
    agg.runs++;
    if (!run.ok) agg.failures++;
    agg.latencySumMs += run.latencyMs;
    agg.latencyMaxMs = Math.max(agg.latencyMaxMs, run.latencyMs);
  }

  /** Write the run aggregates gathered since the last flush (kept for the next one if the store is down). */
  async flushRuns(): Promise<void> {
    if (this.runs.size === 0) return;
    const batch = new Map([...this.runs].map(([name, minutes]) => [name, [...minutes.values()]]));
    this.runs = new Map();
    try {
      await this.store.recordRuns(batch, this.file.store!.retention);
    } catch {
      // put them back: summed into what arrives meanwhile
      for (const [name, list] of batch) for (const agg of list) {
        let perMinute = this.runs.get(name);
        if (!perMinute) this.runs.set(name, (perMinute = new Map()));
        const into = perMinute.get(agg.minute);
        if (!into) perMinute.set(agg.minute, agg);
        else {
          into.runs += agg.runs;
          into.failures += agg.failures;
          into.latencySumMs += agg.latencySumMs;
          into.latencyMaxMs = Math.max(into.latencyMaxMs, agg.latencyMaxMs);
        }
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.notifyTimer) clearTimeout(this.notifyTimer);
    await this.chain.catch(() => undefined);
    await this.flushRuns().catch(() => undefined);
    await this.store.close();
  }
}
