/**
 * One loop per check. Fixed-rate scheduling (next start = previous due time +
 * interval, so runs do not drift by their own duration); every check runs once
 * at start, at once (so /readyz can answer 200 as soon as the slowest first probe
 * is back), and the second run is pushed back by a random phase so checks with
 * equal intervals do not stay aligned after that; at most one run in
 * flight: a scheduled tick or an on-demand call that finds a run in progress
 * shares it (single flight).
 *
 * Event-driven detection: a probe that sees its kept connection drop between
 * runs calls nudge(). A nudge starts an *event episode* (README, "Semantics we
 * chose"):
 *  1. an immediate run;
 *  2. if it fails, confirmation runs back to back (CONFIRM_GAP_MS apart) until
 *     the state is DOWN or a run passes — at most thresholds.failure runs in
 *     all, so hysteresis still needs N consecutive failed runs, it just does
 *     not wait N intervals for them. Each confirmation run is a single attempt
 *     (breaker → timeout, no retry): the runs are the repetition, and a retry
 *     backoff in each would add up to (N−1) × backoff to the detection;
 *  3. once DOWN, a recovery watch: runs after 1 s, 2 s, 4 s … while that is
 *     shorter than the interval (then the schedule takes over), with the same
 *     quick confirmation of successes, so a recovery is seen in seconds.
 * Episodes are bounded by a token bucket per check (EVENT_BURST, one token back
 * every EVENT_REFILL_MS): a connection that keeps flapping costs at most about
 * one extra episode per second, never a re-probe storm; nudges beyond that are
 * coalesced into one deferred episode when the next token is back. The bucket starts
 * full, so the first cut is probed at once whenever it happens (the old
 * "1 s since the last run of any kind" gap could swallow it).
 */
import { applyLatencyBudget } from './latency';
import type { CheckRunner, RunTrigger } from './runner';
import type { CheckStatus, HealthStore, RunResult } from './state';

/** Event episodes a check may start back to back (bucket size). */
export const EVENT_BURST = 3;
/** One episode token comes back this often. */
export const EVENT_REFILL_MS = 1000;
/** Pause between the runs of an episode that confirm a failure (or a success). */
export const CONFIRM_GAP_MS = 10;
/** First delay of the recovery watch after an event-detected DOWN; doubles while below the interval. */
export const RECOVERY_FIRST_MS = 1000;

export class CheckLoop {
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<RunResult> | undefined;
  private stopped = true;
  /** bumped by start() and stop(): a tick or run from an earlier life of the loop can tell */
  private epoch = 0;
  private due = 0;
  /** added once, after the first run: spreads the later runs of checks that started together */
  private phase = 0;
  /** how late each scheduled start was, ms (bench reads it for drift), and when it was due (epoch ms) */
  lastLatenessMs = 0;
  lastDueAt = 0;
  /** event episodes started, and nudges dropped by the token bucket (diagnostics, tests) */
  eventEpisodes = 0;
  eventsSuppressed = 0;
  private tokens = EVENT_BURST;
  private tokensAt = 0;
  private episodeActive = false;
  /** a nudge came while a run was in flight: look again once it is over */
  private pendingNudge = false;
  private waitTimer: NodeJS.Timeout | undefined;
  private deferTimer: NodeJS.Timeout | undefined;
  private wakeWaiter: (() => void) | undefined;

  constructor(
    readonly runner: CheckRunner,
    private readonly store: HealthStore,
    private readonly maxInitialJitterMs = 1000,
    private readonly random: () => number = Math.random,
  ) {}

  get interval(): number {
    return this.runner.check.interval;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.epoch++;
    this.episodeActive = false;
    this.pendingNudge = false;
    this.phase = Math.floor(this.random() * Math.min(this.interval, this.maxInitialJitterMs));
    this.due = Date.now();
    this.arm();
  }

  /** Run now, or join the run already in flight. `retry: false`: one attempt, no retry (episode confirmations). */
  runNow(trigger: RunTrigger = 'manual', options?: { retry?: boolean }): Promise<RunResult> {
    if (this.inflight) return this.inflight;
    const epoch = this.epoch;
    const run = this.runner.run(trigger, options).then((raw) => {
      const result = applyLatencyBudget(this.runner.check, raw);
      // A run that failed because the loop was stopped under it (shutdown, reload aborts it)
      // says nothing about the dependency: recording it would log and notify a false DOWN.
      if (epoch === this.epoch || result.ok) this.store.record(this.runner.check.name, result);
      return result;
    });
    this.inflight = run.finally(() => {
      this.inflight = undefined;
      if (this.pendingNudge) {
        this.pendingNudge = false;
        if (epoch === this.epoch) queueMicrotask(() => this.nudge());
      }
    });
    return this.inflight;
  }

  /** A connection dropped between runs: look again now instead of at the next tick (see the header). */
  nudge(): void {
    if (this.stopped || this.episodeActive) return;
    if (this.inflight) {
      this.pendingNudge = true;
      return;
    }
    if (!this.takeToken()) {
      // Out of tokens: the nudges of a flapping connection are coalesced into one deferred
      // episode when the next token comes back (a cut is still looked at, ≤ EVENT_REFILL_MS late).
      this.eventsSuppressed++;
      if (!this.deferTimer) {
        const wait = Math.max(1, this.tokensAt + EVENT_REFILL_MS - Date.now());
        this.deferTimer = setTimeout(() => {
          this.deferTimer = undefined;
          this.nudge();
        }, wait);
      }
      return;
    }
    void this.episode();
  }

  private takeToken(): boolean {
    const now = Date.now();
    const refill = Math.floor((now - this.tokensAt) / EVENT_REFILL_MS);
    if (refill > 0) {
      this.tokens = Math.min(EVENT_BURST, this.tokens + refill);
      this.tokensAt = this.tokens === EVENT_BURST ? now : this.tokensAt + refill * EVENT_REFILL_MS;
    }
    if (this.tokens < 1) return false;
    if (this.tokens === EVENT_BURST) this.tokensAt = now; // refill counts from the first token spent
    this.tokens--;
    return true;
  }

  private status(): CheckStatus | undefined {
    return this.store.get(this.runner.check.name)?.status;
  }

  private async episode(): Promise<void> {
    const epoch = this.epoch;
    const alive = () => epoch === this.epoch && !this.stopped;
    this.episodeActive = true;
    this.eventEpisodes++;
    const { failure, success } = this.runner.check.thresholds;
    try {
      // 1–2: the event run (with its retries), then quick confirmation of a failure (bounded by
      // the threshold). The confirmation runs are themselves the repetition: one attempt each,
      // through the same breaker and timeout, no retry backoff.
      let result = await this.runNow('event');
      for (let runs = 1; !result.ok && runs < failure && this.status() !== 'DOWN'; runs++) {
        if (!(await this.wait(CONFIRM_GAP_MS, alive))) return;
        result = await this.runNow('event', { retry: false });
      }
      if (result.ok || this.status() !== 'DOWN') return;
      // 3: recovery watch, backing off until the schedule is the quicker way to look
      for (let delay = RECOVERY_FIRST_MS; delay < this.interval; delay *= 2) {
        if (!(await this.wait(delay, alive))) return;
        result = await this.runNow('event');
        for (let runs = 1; result.ok && runs < success && this.status() !== 'UP'; runs++) {
          if (!(await this.wait(CONFIRM_GAP_MS, alive))) return;
          result = await this.runNow('event');
        }
        if (this.status() === 'UP') return;
      }
    } catch {
      // runner.run never rejects; an episode must not either
    } finally {
      if (epoch === this.epoch) this.episodeActive = false;
    }
  }

  /** Sleep that stop() cuts short; resolves true when the loop is still alive afterwards. */
  private wait(ms: number, alive: () => boolean): Promise<boolean> {
    if (!alive()) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const done = () => {
        this.waitTimer = undefined;
        this.wakeWaiter = undefined;
        resolve(alive());
      };
      this.wakeWaiter = done;
      this.waitTimer = setTimeout(done, ms);
    });
  }

  get running(): boolean {
    return this.inflight !== undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.epoch++;
    clearTimeout(this.timer);
    this.timer = undefined;
    clearTimeout(this.waitTimer);
    this.wakeWaiter?.();
    clearTimeout(this.deferTimer);
    this.deferTimer = undefined;
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
    this.lastDueAt = this.due;
    this.lastLatenessMs = Math.max(0, now - this.due);
    try {
      await this.runNow('schedule');
    } catch {
      // runner.run never rejects; this guards the loop anyway
    }
    // stopped (and maybe started again) while this run was in flight: that life's timer is not ours
    if (epoch !== this.epoch) return;
    this.due += this.interval + this.phase;
    this.phase = 0;
    // A run longer than the interval: start the next one now, without a burst of catch-up runs.
    if (this.due < Date.now()) this.due = Date.now();
    this.arm();
  }
}
