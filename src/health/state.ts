/**
 * Per-check state with hysteresis. `applyRun` is a pure function (testable
 * with tables); `HealthStore` owns the states, bumps versions and tells
 * listeners about transitions.
 */
import type { CheckConfig, CheckKind, GroupName } from '../config/types';
import type { BreakerState } from '../policy/build';
import type { ProbeResponse } from '../probes/probe';
import type { ProbeErrorCode } from '../errors';

export type CheckStatus = 'UNKNOWN' | 'UP' | 'DOWN';
export type Outcome = 'success' | 'failure' | 'timeout' | 'rejected';

/** What one run (all attempts of it) came to. Data, not an exception. */
export interface RunResult {
  ok: boolean;
  outcome: Outcome;
  message: string;
  /** duration of the last attempt that reached the dependency, in ms */
  latencyMs: number;
  attempts: number;
  startedAt: number;
  finishedAt: number;
  breaker: BreakerState;
  traceId?: string;
  /** the run span's id and trace flags (with traceId: what the run's log lines are correlated with) */
  spanId?: string;
  traceFlags?: number;
  /** answered, but slower than the check's latency.warnAbove (see health/latency.ts) */
  slow?: boolean;
  /** what the last answer reported besides ok/message (http: status code, size, redirects, phase timings) */
  response?: ProbeResponse;
  /** why the run failed, for machines (errors.ts PROBE_ERROR); absent when it succeeded */
  errorCode?: ProbeErrorCode;
}

/** Facts a probe reports about the answer it got (shown as `response` in /health/{check}). */
export type { ProbeResponse };

export interface CheckState {
  name: string;
  kind: CheckKind;
  critical: boolean;
  groups: GroupName[];
  status: CheckStatus;
  outcome: Outcome | null;
  message: string;
  latencyMs: number | null;
  lastCheckedAt: number | null;
  lastSuccessAt: number | null;
  lastChangeAt: number | null;
  /** how long the last run took, retries and backoff included (ms) */
  lastDurationMs: number | null;
  /** the last answer's facts (http: status code, size, redirects, phases); null when the last run got no answer */
  response: ProbeResponse | null;
  /** why the last run failed, for machines (errors.ts PROBE_ERROR); null after a success */
  errorCode: ProbeErrorCode | null;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  breaker: BreakerState;
  /** increases on every status change (and on reset) */
  version: number;
  /** the last run succeeded but slower than latency.warnAbove: groups report DEGRADED */
  slow?: boolean;
}

export interface Thresholds {
  failure: number;
  success: number;
}

export interface Transition {
  check: string;
  kind: CheckKind;
  from: CheckStatus;
  to: CheckStatus;
  message: string;
  at: number;
  state: CheckState;
  /** the run that caused it (none for an operator's reset) */
  run?: RunResult;
}

export function initialState(check: Pick<CheckConfig, 'name' | 'kind' | 'critical' | 'groups'>): CheckState {
  return {
    name: check.name,
    kind: check.kind,
    critical: check.critical,
    groups: [...check.groups],
    status: 'UNKNOWN',
    outcome: null,
    message: 'not checked yet',
    latencyMs: null,
    lastCheckedAt: null,
    lastSuccessAt: null,
    lastChangeAt: null,
    lastDurationMs: null,
    response: null,
    errorCode: null,
    consecutiveFailures: 0,
    consecutiveSuccesses: 0,
    breaker: 'closed',
    version: 0,
  };
}

/**
 * Next state after a run. The first result decides UP or DOWN at once (there
 * is nothing to be stable against); after that the status flips only after
 * `thresholds.failure` consecutive failures or `thresholds.success` consecutive successes.
 */
export function applyRun(state: CheckState, run: RunResult, thresholds: Thresholds): CheckState {
  const consecutiveFailures = run.ok ? 0 : state.consecutiveFailures + 1;
  const consecutiveSuccesses = run.ok ? state.consecutiveSuccesses + 1 : 0;
  let status = state.status;
  if (status === 'UNKNOWN') status = run.ok ? 'UP' : 'DOWN';
  else if (status === 'UP' && consecutiveFailures >= thresholds.failure) status = 'DOWN';
  else if (status === 'DOWN' && consecutiveSuccesses >= thresholds.success) status = 'UP';
  const changed = status !== state.status;
  return {
    ...state,
    status,
    outcome: run.outcome,
    message: run.message,
    latencyMs: run.outcome === 'rejected' ? state.latencyMs : run.latencyMs,
    lastCheckedAt: run.finishedAt,
    lastSuccessAt: run.ok ? run.finishedAt : state.lastSuccessAt,
    lastChangeAt: changed ? run.finishedAt : state.lastChangeAt,
    lastDurationMs: Math.max(0, run.finishedAt - run.startedAt),
    response: run.outcome === 'rejected' ? state.response : (run.response ?? null),
    errorCode: run.ok ? null : (run.errorCode ?? 'ERR_PROBE_FAILED'),
    consecutiveFailures,
    consecutiveSuccesses,
    breaker: run.breaker,
    version: changed ? state.version + 1 : state.version,
    slow: run.ok && run.slow === true,
  };
}

export type TransitionListener = (transition: Transition) => void;
/** every recorded run, after the state has been updated (stats, incidents) */
export type RecordListener = (name: string, run: RunResult, state: CheckState) => void;

export class HealthStore {
  private readonly states = new Map<string, CheckState>();
  private readonly thresholds = new Map<string, Thresholds>();
  private readonly listeners = new Set<TransitionListener>();
  private readonly changeListeners = new Set<() => void>();
  private readonly recordListeners = new Set<RecordListener>();
  /** increases whenever any check's version does, or the set of checks changes: the ETag source */
  private generationCounter = 0;

  get generation(): number {
    return this.generationCounter;
  }

  /** Add or update a check's static fields; keeps its state when it already exists (reload). */
  upsert(check: CheckConfig): void {
    const existing = this.states.get(check.name);
    this.thresholds.set(check.name, check.thresholds);
    if (existing && existing.kind === check.kind) {
      this.states.set(check.name, { ...existing, critical: check.critical, groups: [...check.groups] });
    } else {
      this.states.set(check.name, initialState(check));
    }
    this.bump();
  }

  remove(name: string): void {
    if (this.states.delete(name)) {
      this.thresholds.delete(name);
      this.bump();
    }
  }

  get(name: string): CheckState | undefined {
    return this.states.get(name);
  }

  all(): CheckState[] {
    return [...this.states.values()];
  }

  names(): string[] {
    return [...this.states.keys()];
  }

  record(name: string, run: RunResult): CheckState | undefined {
    const previous = this.states.get(name);
    const thresholds = this.thresholds.get(name);
    if (!previous || !thresholds) return undefined; // removed by a reload while running
    const next = applyRun(previous, run, thresholds);
    this.states.set(name, next);
    for (const listener of this.recordListeners) {
      try {
        listener(name, run, next);
      } catch {
        // a listener's failure must never break state keeping
      }
    }
    if (next.version !== previous.version) {
      this.bump();
      const transition: Transition = { check: name, kind: next.kind, from: previous.status, to: next.status, message: next.message, at: run.finishedAt, state: next, run };
      for (const listener of this.listeners) safely(() => listener(transition));
    }
    return next;
  }

  setBreaker(name: string, breaker: BreakerState): void {
    const state = this.states.get(name);
    if (state && state.breaker !== breaker) {
      this.states.set(name, { ...state, breaker });
      // not a status change (version stays), but /health shows the breaker: its ETag must move
      this.bump();
    }
  }

  /** Counters cleared, status back to UNKNOWN until the next run, version bumped. */
  reset(name: string): CheckState | undefined {
    const state = this.states.get(name);
    if (!state) return undefined;
    const next: CheckState = { ...initialState(state), lastSuccessAt: state.lastSuccessAt, lastChangeAt: Date.now(), version: state.version + 1 };
    this.states.set(name, next);
    this.bump();
    if (state.status !== next.status) {
      const transition: Transition = { check: name, kind: next.kind, from: state.status, to: next.status, message: 'reset by operator', at: Date.now(), state: next };
      for (const listener of this.listeners) safely(() => listener(transition));
    }
    return next;
  }

  onTransition(listener: TransitionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** every run recorded (called before transition listeners, so they see the run counted) */
  onRecord(listener: RecordListener): () => void {
    this.recordListeners.add(listener);
    return () => this.recordListeners.delete(listener);
  }

  /** any change that alters the served status (for watchers such as gRPC Watch) */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private bump(): void {
    this.generationCounter++;
    for (const listener of this.changeListeners) safely(listener);
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // a listener's failure must never break state keeping
  }
}
