/**
 * Hot reload (SPEC §2): on SIGHUP or a change of the config file, load and
 * validate the file again; a valid config replaces the running one through
 * `applyConfig` (checks kept by name keep their state and connections), an
 * invalid one is refused: the old config stays, every problem is logged and
 * the failure is counted in `healthcheck.config.reload_failures`.
 *
 * The directory is watched, not the file: editors save by writing a temp file
 * and renaming it over the original (a watch on the old inode would go deaf),
 * and Kubernetes updates a mounted ConfigMap by swapping the `..data` symlink
 * (the file itself never changes). Any event in the directory schedules one
 * debounced reload; a file-triggered reload whose bytes are unchanged is a
 * no-op, SIGHUP always reloads (`${file:…}` secrets may have rotated).
 */
import { createHash } from 'node:crypto';
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, formatProblem } from '../errors';
import type { SidecarConfig } from './types';

export type ReloadTrigger = 'sighup' | 'file' | 'manual';

/**
 * What the reloader records (the port telemetry/instruments.ts `reloadMetrics`
 * implements): `healthcheck.config.reloads` and `healthcheck.config.reload_failures`
 * by trigger.
 */
export interface ReloadMetrics {
  applied(trigger: ReloadTrigger): void;
  rejected(trigger: ReloadTrigger): void;
}

export type ReloadOutcome =
  | { status: 'applied'; trigger: ReloadTrigger; added: string[]; changed: string[]; removed: string[] }
  | { status: 'unchanged'; trigger: ReloadTrigger }
  | { status: 'rejected'; trigger: ReloadTrigger; problems: string[] };

/** What the reloader needs from the Sidecar (kept small so tests can use the real Sidecar or a stub). */
export interface ReloadTarget {
  readonly config: SidecarConfig;
  applyConfig(next: SidecarConfig): Promise<{ added: string[]; changed: string[]; removed: string[] }>;
}

export interface ReloaderOptions {
  file: string;
  target: ReloadTarget;
  logger: Logger;
  /** quiet period after the last file event before reloading; default 300 ms */
  debounceMs?: number;
  /** watch the file's directory; default true */
  watch?: boolean;
  /** install a SIGHUP handler; default true */
  sighup?: boolean;
  /** load and validate the file (the probe registry's loader knows the check kinds) */
  load: (file: string) => SidecarConfig;
  /** where reloads are counted (telemetry/instruments.ts reloadMetrics, made by the wiring); default: nowhere */
  metrics?: ReloadMetrics;
}

export interface ReloadStats {
  successes: number;
  failures: number;
  lastFailure?: { at: number; problems: string[] };
}


/** Settings that only take effect on restart; a reload changing them says so. */
function restartOnlyChanges(before: SidecarConfig, after: SidecarConfig): string[] {
  const out: string[] = [];
  if (before.server.port !== after.server.port) out.push('server.port');
  if (before.server.host !== after.server.host) out.push('server.host');
  if (JSON.stringify(before.server.overload) !== JSON.stringify(after.server.overload)) out.push('server.overload');
  if (JSON.stringify(before.server.probeListener) !== JSON.stringify(after.server.probeListener)) out.push('server.probeListener');
  if (JSON.stringify(before.telemetry) !== JSON.stringify(after.telemetry)) out.push('telemetry');
  if (before.log.level !== after.log.level) out.push('log.level');
  return out;
}

function ignoreSignal(): void {}

export class ConfigReloader {
  private readonly file: string;
  private readonly debounceMs: number;
  private readonly load: (file: string) => SidecarConfig;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastHash: string | undefined;
  private running: Promise<ReloadOutcome> | undefined;
  private queued: { trigger: ReloadTrigger; promise: Promise<ReloadOutcome> } | undefined;
  private readonly onSighup = () => void this.reload('sighup');
  private stopped = false;
  /** this reloader's counts (diagnostics, tests) */
  private readonly counts: { successes: number; failures: number; lastFailure?: { at: number; problems: string[] } } = { successes: 0, failures: 0 };

  constructor(private readonly options: ReloaderOptions) {
    this.file = resolve(options.file);
    this.debounceMs = options.debounceMs ?? 300;
    this.load = options.load;
    this.lastHash = this.hashFile();
  }

  /** Reloads applied and refused by this reloader, the latest refusal's problems. */
  stats(): ReloadStats {
    const { successes, failures, lastFailure } = this.counts;
    return { successes, failures, ...(lastFailure ? { lastFailure: { ...lastFailure, problems: [...lastFailure.problems] } } : {}) };
  }

  start(): this {
    if (this.options.sighup ?? true) process.on('SIGHUP', this.onSighup);
    if (this.options.watch ?? true) {
      const dir = dirname(this.file);
      try {
        this.watcher = watch(dir, { persistent: false }, (_event, name) => this.fileEvent(name));
        this.watcher.on('error', (err) => this.options.logger.warn({ err, dir }, 'config directory watch failed; reload with SIGHUP'));
      } catch (err) {
        this.options.logger.warn({ err, dir }, 'cannot watch the config directory; reload with SIGHUP');
      }
    }
    return this;
  }

  stop(): void {
    this.stopped = true;
    process.off('SIGHUP', this.onSighup);
    // a SIGHUP during shutdown must not kill the process (the default action)
    if (process.listenerCount('SIGHUP') === 0) process.on('SIGHUP', ignoreSignal);
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fileEvent(name: string | Buffer | null): void {
    // Events for other files in a shared directory are ignored, except the
    // ConfigMap machinery (..data, ..data_tmp, ..2024_…) and unnamed events.
    const entry = name === null ? null : String(name);
    if (entry !== null && entry !== basename(this.file) && !entry.startsWith('..')) return;
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reload('file');
    }, this.debounceMs);
    this.timer.unref?.();
  }

  private hashFile(): string | undefined {
    try {
      return createHash('sha256').update(readFileSync(this.file)).digest('hex');
    } catch {
      return undefined;
    }
  }

  /** Reload now. Reloads never overlap: one arriving during another runs after it (once). */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    if (!this.running) {
      this.running = this.doReload(trigger)
        .catch((err: Error): ReloadOutcome => {
          this.options.logger.error({ err, trigger }, 'config reload failed while applying; see the error');
          return { status: 'rejected', trigger, problems: [String(err?.message ?? err)] };
        })
        .finally(() => {
          this.running = undefined;
        });
      return this.running;
    }
    if (this.queued) {
      // a SIGHUP outranks a file event: it forces a reload even with unchanged bytes
      if (trigger === 'sighup') this.queued.trigger = 'sighup';
      return this.queued.promise;
    }
    const queued: { trigger: ReloadTrigger; promise: Promise<ReloadOutcome> } = { trigger, promise: undefined as never };
    const next = () => {
      this.queued = undefined;
      return this.reload(queued.trigger);
    };
    queued.promise = this.running.then(next, next);
    this.queued = queued;
    return queued.promise;
  }

  private async doReload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const { logger, target } = this.options;
    const hash = this.hashFile();
    if (trigger === 'file' && (hash === undefined || hash === this.lastHash)) {
      // unchanged bytes, or the file is missing mid-swap (the next event brings it back)
      return { status: 'unchanged', trigger };
    }
    let next: SidecarConfig;
    try {
      next = this.load(this.options.file);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems.map((p) => formatProblem(err.file, p)) : [String((err as Error).message ?? err)];
      this.lastHash = hash; // do not re-log the same broken bytes on every stray event
      this.counts.failures++;
      this.counts.lastFailure = { at: Date.now(), problems };
      this.options.metrics?.rejected(trigger);
      logger.error({ trigger, file: this.options.file, problems }, `config reload rejected (${problems.length} problem(s)); keeping the running config`);
      for (const problem of problems) logger.error({ trigger }, problem);
      return { status: 'rejected', trigger, problems };
    }
    const restartOnly = restartOnlyChanges(target.config, next);
    const diff = await target.applyConfig(next);
    this.lastHash = hash;
    this.counts.successes++;
    this.options.metrics?.applied(trigger);
    logger.info({ trigger, file: this.options.file, ...diff, checks: next.checks.length }, `config reloaded: ${diff.added.length} added, ${diff.changed.length} changed, ${diff.removed.length} removed`);
    if (restartOnly.length) logger.warn({ settings: restartOnly }, `config reload: ${restartOnly.join(', ')} changed; takes effect after a restart`);
    for (const skipped of next.skipped) logger.info({ check: skipped.name }, `check ${skipped.name} skipped: ${skipped.reason}`);
    for (const warning of next.warnings) logger.warn({ config: next.source, setting: warning.path, line: warning.line, column: warning.column }, `config warning: ${formatProblem(next.source, warning)}`);
    return { status: 'applied', trigger, ...diff };
  }
}
