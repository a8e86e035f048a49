/**
 * One run of one check: policy (retry → breaker → timeout) around the probe,
 * a span per run and per attempt, and a RunResult that is data, never an
 * exception. The OpenTelemetry API is a no-op until telemetry/sdk registers
 * a provider, so this costs nothing when telemetry is off.
 */
import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { isBrokenCircuitError, isIsolatedCircuitError, isTaskCancelledError } from 'cockatiel';
import type { CheckConfig } from '../config/types';
import type { Probe } from '../probes/probe';
import { errorMessage } from '../probes/probe';
import { breakerState, buildPolicy, type BreakerState, type CheckPolicy } from '../policy/build';
import type { Redactor } from '../redact';
import { ATTR } from '../telemetry/semconv';
import type { Outcome, RunResult } from './state';

export type RunTrigger = 'schedule' | 'manual' | 'event' | 'cli';

/** Receives one call per attempt (including breaker rejections); telemetry implements it. */
export interface AttemptObserver {
  attemptFinished(check: CheckConfig, outcome: Outcome, durationMs: number): void;
  breakerChanged?(check: CheckConfig, state: BreakerState): void;
}

const tracer = () => trace.getTracer('otel-health-sidecar');

export class CheckRunner {
  private policy: CheckPolicy;
  private readonly shutdown = new AbortController();
  private lastFailure = '';

  constructor(
    readonly check: CheckConfig,
    private readonly probe: Probe,
    private readonly redactor: Redactor,
    private readonly observer?: AttemptObserver,
  ) {
    this.policy = this.newPolicy();
  }

  get breaker(): BreakerState {
    return breakerState(this.policy.breaker);
  }

  /** Close the breaker and forget its history (admin reset). */
  resetPolicy(): void {
    this.policy = this.newPolicy();
    this.observer?.breakerChanged?.(this.check, 'closed');
  }

  async run(trigger: RunTrigger): Promise<RunResult> {
    const check = this.check;
    return tracer().startActiveSpan(
      `healthcheck ${check.name}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: { [ATTR.name]: check.name, [ATTR.kind]: check.kind, [ATTR.critical]: check.critical, [ATTR.trigger]: trigger },
      },
      async (span) => {
        const startedAt = Date.now();
        let attempts = 0;
        let latencyMs = 0;
        const policy = this.policy;
        let result: Pick<RunResult, 'ok' | 'outcome' | 'message'>;
        try {
          const answer = await policy.policy.execute(({ signal }) => {
            attempts++;
            return this.attempt(attempts, signal, (ms) => (latencyMs = ms));
          }, this.shutdown.signal);
          result = answer.ok
            ? { ok: true, outcome: 'success', message: answer.message }
            : { ok: false, outcome: 'failure', message: answer.message };
        } catch (err) {
          if (isBrokenCircuitError(err) || isIsolatedCircuitError(err)) {
            this.observer?.attemptFinished(check, 'rejected', 0);
            result = { ok: false, outcome: 'rejected', message: `circuit breaker open${this.lastFailure ? `; last error: ${this.lastFailure}` : ''}` };
          } else if (isTaskCancelledError(err) && !this.shutdown.signal.aborted) {
            result = { ok: false, outcome: 'timeout', message: `timed out after ${check.timeout}ms` };
          } else {
            result = { ok: false, outcome: 'failure', message: this.redactor.text(errorMessage(err)) };
          }
        }
        if (!result.ok && result.outcome !== 'rejected') this.lastFailure = result.message;
        const breaker = breakerState(policy.breaker);
        span.setAttributes({ [ATTR.outcome]: result.outcome, [ATTR.attempts]: attempts, [ATTR.breakerState]: breaker });
        if (result.ok) span.setStatus({ code: SpanStatusCode.OK });
        else span.setStatus({ code: SpanStatusCode.ERROR, message: result.message });
        const traceId = span.spanContext().traceId;
        span.end();
        return { ...result, latencyMs, attempts, startedAt, finishedAt: Date.now(), breaker, traceId: /^0+$/.test(traceId) ? undefined : traceId };
      },
    );
  }

  private attempt(n: number, signal: AbortSignal, setLatency: (ms: number) => void) {
    const check = this.check;
    return tracer().startActiveSpan(
      `healthcheck ${check.name} attempt`,
      { kind: SpanKind.INTERNAL, attributes: { [ATTR.name]: check.name, [ATTR.kind]: check.kind, [ATTR.attempt]: n } },
      async (span: Span) => {
        const started = performance.now();
        let outcome: Outcome = 'failure';
        try {
          const answer = await this.probe.run(signal);
          outcome = answer.ok ? 'success' : 'failure';
          if (!answer.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: answer.message });
          return answer;
        } catch (err) {
          outcome = signal.aborted ? 'timeout' : 'failure';
          const message = outcome === 'timeout' ? `timed out after ${check.timeout}ms` : this.redactor.text(errorMessage(err));
          span.setStatus({ code: SpanStatusCode.ERROR, message });
          throw err;
        } finally {
          const ms = performance.now() - started;
          setLatency(ms);
          span.setAttribute(ATTR.outcome, outcome);
          span.end();
          this.observer?.attemptFinished(check, outcome, ms);
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
