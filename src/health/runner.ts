/**
 * One run of one check: policy (retry → breaker → timeout) around the probe,
 * a span per run and per attempt, and a RunResult that is data, never an
 * exception. The OpenTelemetry API is a no-op until telemetry/sdk registers
 * a provider, so this costs nothing when telemetry is off.
 */
import { context, SpanKind, SpanStatusCode, trace, type Span, type SpanOptions, type SpanStatus } from '@opentelemetry/api';
import type { CheckConfig } from '../config/types';
import type { Probe, ProbeResult } from '../probes/probe';
import { errorMessage } from '../probes/probe';
import { breakerState, buildPolicy, isBreakerRejection, isTimeoutError, type BreakerState, type CheckPolicy } from '../policy/build';
import type { Redactor } from '../redact';
import { ATTR, SEMCONV } from '../telemetry/semconv';
import { PROBE_ERROR, probeErrorCode, type ProbeErrorCode } from '../errors';
import type { Outcome, RunResult } from './state';

export type RunTrigger = 'schedule' | 'manual' | 'event' | 'cli';

/** Receives one call per attempt (including breaker rejections); telemetry implements it. */
export interface AttemptObserver {
  attemptFinished(check: CheckConfig, outcome: Outcome, durationMs: number): void;
  breakerChanged?(check: CheckConfig, state: BreakerState): void;
}

const tracer = () => trace.getTracer('otel-health-sidecar');

/** the status of every successful run and attempt (the SDK copies a status, never keeps the object) */
const STATUS_OK: SpanStatus = Object.freeze({ code: SpanStatusCode.OK });
/** addEventListener options of the attempt's abort listener */
const ONCE = Object.freeze({ once: true as const });

interface AttemptRecord {
  outcome: Outcome;
  message: string;
  ms: number;
  /** why it failed (errors.ts PROBE_ERROR); none when it succeeded */
  code?: ProbeErrorCode;
}

export class CheckRunner {
  private policy: CheckPolicy;
  private readonly shutdown = new AbortController();
  private lastFailure = '';
  /**
   * The span names and start options of this check's runs (per trigger) and attempts (per
   * attempt number), built at first use and shared by every span: the check of a runner never
   * changes (a reload makes a new runner), and the SDK copies the attributes when a span
   * starts (sanitizeAttributes), so no span can change them.
   */
  private readonly runSpanName: string;
  private readonly attemptSpanName: string;
  private readonly runSpanOptions = new Map<RunTrigger, SpanOptions>();
  private readonly attemptSpanOptions: SpanOptions[] = [];

  constructor(
    readonly check: CheckConfig,
    private readonly probe: Probe,
    private readonly redactor: Redactor,
    private readonly observer?: AttemptObserver,
  ) {
    this.policy = this.newPolicy();
    this.runSpanName = `healthcheck ${check.name}`;
    this.attemptSpanName = `healthcheck ${check.name} attempt`;
  }

  private runOptions(trigger: RunTrigger): SpanOptions {
    let options = this.runSpanOptions.get(trigger);
    if (!options) {
      const check = this.check;
      options = Object.freeze({ kind: SpanKind.INTERNAL, attributes: Object.freeze({ [ATTR.name]: check.name, [ATTR.kind]: check.kind, [ATTR.critical]: check.critical, [ATTR.trigger]: trigger }) });
      this.runSpanOptions.set(trigger, options);
    }
    return options;
  }

  private attemptOptions(n: number): SpanOptions {
    let options = this.attemptSpanOptions[n];
    if (!options) {
      const check = this.check;
      options = Object.freeze({ kind: SpanKind.INTERNAL, attributes: Object.freeze({ [ATTR.name]: check.name, [ATTR.kind]: check.kind, [ATTR.attempt]: n }) });
      this.attemptSpanOptions[n] = options;
    }
    return options;
  }

  get breaker(): BreakerState {
    return breakerState(this.policy.breaker);
  }

  /** Close the breaker and forget its history (admin reset). */
  resetPolicy(): void {
    this.policy = this.newPolicy();
    this.observer?.breakerChanged?.(this.check, 'closed');
  }

  /** `retry: false`: one attempt through breaker → timeout (the confirmation runs of an event episode). */
  async run(trigger: RunTrigger, options?: { retry?: boolean }): Promise<RunResult> {
    const check = this.check;
    // every run is a trace of its own, whatever context started it (an event-triggered re-probe
    // starts from a driver callback that still carries an earlier attempt's span): the active
    // context without its span (the SDK's `root: true`, without a new context when there is no
    // span to take out, as for a scheduled run)
    const active = context.active();
    const parent = trace.getSpan(active) ? trace.deleteSpan(active) : active;
    return tracer().startActiveSpan(
      this.runSpanName,
      this.runOptions(trigger),
      parent,
      async (span) => {
        const startedAt = Date.now();
        let attempts = 0;
        let latencyMs = 0;
        let last: AttemptRecord | undefined;
        const policy = this.policy;
        let result: Pick<RunResult, 'ok' | 'outcome' | 'message' | 'response' | 'errorCode'>;
        try {
          const answer = await (options?.retry === false ? policy.single : policy.policy).execute(({ signal }) => {
            attempts++;
            return this.attempt(attempts, signal, (record) => {
              last = record;
              latencyMs = record.ms;
            });
          }, this.shutdown.signal);
          result = answer.ok ? { ok: true, outcome: 'success', message: answer.message } : { ok: false, outcome: 'failure', message: answer.message, errorCode: PROBE_ERROR.unhealthy };
          if (answer.response) result.response = answer.response;
        } catch (err) {
          if (isBreakerRejection(err)) {
            // with the run's span active: the metrics take their exemplar from it
            context.with(trace.setSpan(context.active(), span), () => this.observer?.attemptFinished(check, 'rejected', 0));
            // A failed attempt of this very run opened the breaker and the retry was
            // rejected: the run did reach the dependency, so report what happened there.
            result = last
              ? { ok: false, outcome: last.outcome, message: `${last.message}; circuit breaker opened`, errorCode: last.code ?? PROBE_ERROR.failed }
              : { ok: false, outcome: 'rejected', message: `circuit breaker open${this.lastFailure ? `; last error: ${this.lastFailure}` : ''}`, errorCode: PROBE_ERROR.breakerOpen };
          } else if (isTimeoutError(err) && !this.shutdown.signal.aborted) {
            result = { ok: false, outcome: 'timeout', message: `timed out after ${check.timeout}ms`, errorCode: PROBE_ERROR.timeout };
          } else {
            result = { ok: false, outcome: 'failure', message: this.redactor.text(errorMessage(err)), errorCode: probeErrorCode(err) };
          }
        }
        if (!result.ok && result.outcome !== 'rejected') this.lastFailure = result.message;
        const breaker = breakerState(policy.breaker);
        span.setAttribute(ATTR.outcome, result.outcome);
        span.setAttribute(ATTR.attempts, attempts);
        span.setAttribute(ATTR.breakerState, breaker);
        if (result.errorCode) span.setAttribute(SEMCONV.errorType, result.errorCode);
        if (result.ok) span.setStatus(STATUS_OK);
        else span.setStatus({ code: SpanStatusCode.ERROR, message: result.message });
        const { traceId, spanId, traceFlags } = span.spanContext();
        span.end();
        // completed in place (same keys, same order as a spread copy would have): one object per run
        const run = result as RunResult;
        run.latencyMs = latencyMs;
        run.attempts = attempts;
        run.startedAt = startedAt;
        run.finishedAt = Date.now();
        run.breaker = breaker;
        if (!/^0+$/.test(traceId)) {
          run.traceId = traceId;
          run.spanId = spanId;
          run.traceFlags = traceFlags;
        }
        return run;
      },
    );
  }

  /**
   * One attempt: span, latency and observer call. The attempt is finished the
   * moment its signal aborts (timeout or shutdown), not when the probe gets
   * round to rejecting, so the observer and latency are settled before the
   * policy hands the timeout back to run().
   */
  private attempt(n: number, signal: AbortSignal, record: (attempt: AttemptRecord) => void): Promise<ProbeResult> {
    const check = this.check;
    return tracer().startActiveSpan(
      this.attemptSpanName,
      this.attemptOptions(n),
      async (span: Span) => {
        const started = performance.now();
        let finished = false;
        const finish = (outcome: Outcome, message: string, code?: ProbeErrorCode) => {
          if (finished) return;
          finished = true;
          const ms = performance.now() - started;
          record(code ? { outcome, message, ms, code } : { outcome, message, ms });
          span.setAttribute(ATTR.outcome, outcome);
          if (code) span.setAttribute(SEMCONV.errorType, code);
          span.setStatus(outcome === 'success' ? STATUS_OK : { code: SpanStatusCode.ERROR, message });
          span.end();
          // with this attempt's span active even when an abort event (another context) finished it:
          // the metrics take their exemplar (trace id, span id) from the active span. After the
          // probe's answer it is active already: no new context for that, the usual case.
          const observer = this.observer;
          if (!observer) return;
          if (trace.getActiveSpan() === span) observer.attemptFinished(check, outcome, ms);
          else context.with(trace.setSpan(context.active(), span), () => observer.attemptFinished(check, outcome, ms));
        };
        const onAbort = () =>
          finish(this.shutdown.signal.aborted ? 'failure' : 'timeout', this.shutdown.signal.aborted ? 'cancelled: shutting down' : `timed out after ${check.timeout}ms`, this.shutdown.signal.aborted ? PROBE_ERROR.failed : PROBE_ERROR.timeout);
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, ONCE);
        try {
          const answer = await this.probe.run(signal);
          finish(answer.ok ? 'success' : 'failure', answer.message, answer.ok ? undefined : PROBE_ERROR.unhealthy);
          return answer;
        } catch (err) {
          finish('failure', this.redactor.text(errorMessage(err)), probeErrorCode(err));
          throw err;
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
      },
    );
  }

  private newPolicy(): CheckPolicy {
    const policy = buildPolicy(this.check);
    policy.breaker.onStateChange(() => {
      const state = breakerState(policy.breaker);
      trace.getActiveSpan()?.addEvent('breaker.state_change', { [ATTR.breakerState]: state });
      this.observer?.breakerChanged?.(this.check, state);
    });
    policy.retry.onRetry((event) => {
      const reason = 'error' in event ? this.redactor.text(errorMessage(event.error)) : (event.value as { message?: string } | undefined)?.message ?? 'failed';
      trace.getActiveSpan()?.addEvent('retry', { [ATTR.attempt]: event.attempt, 'healthcheck.retry.delay_ms': Math.round(event.delay), 'healthcheck.retry.reason': reason });
    });
    return policy;
  }

  /** Abort a run in progress (shutdown) and release connections. */
  async close(): Promise<void> {
    this.shutdown.abort(new Error('shutting down'));
    await this.probe.close().catch(() => undefined);
  }
}
