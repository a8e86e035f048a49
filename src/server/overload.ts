/**
 * Load shedding for every endpoint but the kubelet's (issue 14.2).
 *
 * The sidecar answers on one event loop. The kubelet paths are answered from
 * memory in microseconds, but a request that arrives while the loop renders
 * fifty status pages waits for all fifty: a flood of `/health`, `/`,
 * `/admin/diagnostics` or `/metrics` (each within its per-IP quota, from
 * many addresses) would push `/livez` past the kubelet's 1 s timeout, and the
 * pod would be restarted for load on another path.
 *
 * What delays a waiting `/livez` is the work done in the same turn of the
 * event loop (all the requests Node read in one poll) and the work still in
 * flight. So the gate bounds both:
 *  - at most `perTurn` sheddable requests are admitted per event-loop turn
 *    (the count resets in the next check phase, `setImmediate`), and once
 *    the requests admitted in a turn have taken `turnBudgetMs` between them
 *    (a 13-check status page with details takes ~16 ms), the rest of the
 *    turn is shed too. The first request of a turn always runs, so a
 *    sequential client, however fast, is never shed by this;
 *  - at most `maxInFlight` sheddable requests run at once (handlers that
 *    await: a metrics collection, a body, a notification replay).
 * Everything beyond gets `503 overloaded` with `Retry-After: 1`, answered
 * without running the handler, and counted
 * (`healthcheck_server_shed_total{http_route}`). Routes registered with
 * `shed: false` (the kubelet paths, `/-/healthy`) are never shed; the kubelet
 * fast path does not come here at all.
 */

export interface OverloadLimits {
  /** sheddable requests admitted per event-loop turn */
  perTurn: number;
  /** ms of handler time per event-loop turn after which the rest of the turn is shed */
  turnBudgetMs: number;
  /** sheddable requests running at once */
  maxInFlight: number;
  /** seconds a shed client is asked to wait (Retry-After) */
  retryAfterSeconds: number;
}

export const DEFAULT_OVERLOAD_LIMITS: OverloadLimits = { perTurn: 8, turnBudgetMs: 20, maxInFlight: 32, retryAfterSeconds: 1 };

/** One admitted request: call `done` once its answer is written (or it failed). */
export interface Admission {
  done(): void;
}

export class OverloadGate {
  private readonly limits: OverloadLimits;
  private turn = 0;
  private turnCount = 0;
  private turnSpentMs = 0;
  private resetScheduled = false;
  private inFlight = 0;
  private readonly resetTurn = () => {
    this.turn++;
    this.turnCount = 0;
    this.turnSpentMs = 0;
    this.resetScheduled = false;
  };

  /**
   * `schedule` runs its callback once the current turn is over (default
   * setImmediate); `now` is a millisecond clock (default performance.now).
   * Tests pass their own.
   */
  constructor(
    limits: Partial<OverloadLimits> = {},
    private readonly schedule: (fn: () => void) => void = (fn) => void setImmediate(fn),
    private readonly now: () => number = () => performance.now(),
  ) {
    this.limits = { ...DEFAULT_OVERLOAD_LIMITS, ...limits };
    for (const [name, value] of Object.entries(this.limits)) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`overload limit ${name} must be a positive integer (got ${value})`);
    }
  }

  get retryAfterSeconds(): number {
    return this.limits.retryAfterSeconds;
  }

  /** requests admitted and not yet done */
  get running(): number {
    return this.inFlight;
  }

  /**
   * Would `admit` shed a request now? Reads three numbers and allocates
   * nothing: the server asks it first, before it parses the target, looks
   * at the key or charges the rate limiter (server/app.ts, early shedding).
   */
  saturated(): boolean {
    const { perTurn, turnBudgetMs, maxInFlight } = this.limits;
    return this.turnCount >= perTurn || this.turnSpentMs >= turnBudgetMs || this.inFlight >= maxInFlight;
  }

  /** An admission, or undefined: shed this request. */
  admit(): Admission | undefined {
    if (this.saturated()) return undefined;
    this.turnCount++;
    if (!this.resetScheduled) {
      this.resetScheduled = true;
      this.schedule(this.resetTurn);
    }
    this.inFlight++;
    const turn = this.turn;
    const started = this.now();
    let open = true;
    return {
      done: () => {
        if (!open) return;
        open = false;
        this.inFlight--;
        // time spent in this turn; an answer that awaited into a later turn did not hold this one up
        if (turn === this.turn) this.turnSpentMs += this.now() - started;
      },
    };
  }
}
