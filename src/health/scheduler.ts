/**
 * One loop per check. Fixed-rate scheduling (next start = previous due time +
 * interval, so runs do not drift by their own duration), a jittered first
 * start so checks with equal intervals do not align, and at most one run in
 * flight: a scheduled tick or an on-demand call that finds a run in progress
 * shares it (single flight).
 */
import { applyLatencyBudget } from './latency';
import type { CheckRunner, RunTrigger } from './runner';
import type { HealthStore, RunResult } from './state';

/** Event-triggered re-probes (connection lost) at most this often per check. */
const MIN_EVENT_GAP_MS = 1000;

export class CheckLoop {
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<RunResult> | undefined;
  private stopped = true;
  /** bumped by start() and stop(): a tick or run from an earlier life of the loop can tell */
  private epoch = 0;
  private due = 0;
  private lastStart = 0;
  /** how late each scheduled start was, ms (bench reads it for drift) */
  lastLatenessMs = 0;

  constructor(
    readonly runner: CheckRunner,
    private readonly store: HealthStore,
    private readonly maxInitialJitterMs = 1000,
  ) {}

  get interval(): number {
    return this.runner.check.interval;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.epoch++;
    const jitter = Math.floor(Math.random() * Math.min(this.interval, this.maxInitialJitterMs));
    this.due = Date.now() + jitter;
    this.arm();
  }

  /** Run now, or join the run already in flight. */
  runNow(trigger: RunTrigger = 'manual'): Promise<RunResult> {
    if (this.inflight) return this.inflight;
    this.lastStart = Date.now();
    const epoch = this.epoch;
    const run = this.runner.run(trigger).then((raw) => {
      const result = applyLatencyBudget(this.runner.check, raw);
      // A run that failed because the loop was stopped under it (shutdown, reload aborts it)
      // says nothing about the dependency: recording it would log and notify a false DOWN.
      if (epoch === this.epoch || result.ok) this.store.record(this.runner.check.name, result);
      return result;
    });
    this.inflight = run.finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** A connection dropped between runs: look again now instead of at the next tick. */
  nudge(): void {
    if (this.stopped || this.inflight || Date.now() - this.lastStart < MIN_EVENT_GAP_MS) return;
    void this.runNow('event');
  }

  get running(): boolean {
    return this.inflight !== undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.epoch++;
    clearTimeout(this.timer);
    this.timer = undefined;
    const inflight = this.inflight;
    if (inflight) await inflight.catch(() => undefined);
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), Math.max(0, this.due - Date.now()));
  }

  private async tick(): Promise<void> {
    const epoch = this.epoch;
    const now = Date.now();
    this.lastLatenessMs = Math.max(0, now - this.due);
    try {
      await this.runNow('schedule');
    } catch {
      // runner.run never rejects; this guards the loop anyway
    }
    // stopped (and maybe started again) while this run was in flight: that life's timer is not ours
    if (epoch !== this.epoch) return;
    this.due += this.interval;
    // A run longer than the interval: start the next one now, without a burst of catch-up runs.
    if (this.due < Date.now()) this.due = Date.now();
    this.arm();
  }
}
