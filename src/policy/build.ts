/**
 * cockatiel policies for one check, outermost first:
 *   retry (attempts, exponential backoff, optional jitter)
 *   → circuit breaker (consecutive failures, halfOpenAfter)
 *   → timeout (per attempt, aggressive: the attempt's signal aborts and the call returns at once;
 *     the signal is not aborted after a call that returned in time)
 * A rejection by the open breaker is never retried, and neither is a failure
 * that has just opened the breaker: there is nothing to gain by asking again.
 *
 * `single` is the same breaker → timeout without the retry (one attempt): the
 * confirmation runs of an event episode use it, since they are themselves the
 * repetition (README, "Semantics we chose"). It shares the breaker instance, so
 * both paths count toward and obey the same breaker.
 */
import {
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  circuitBreaker,
  decorrelatedJitterGenerator,
  handleAll,
  handleWhen,
  isBrokenCircuitError,
  isIsolatedCircuitError,
  noJitterGenerator,
  retry,
  TaskCancelledError,
  timeout,
  wrap,
  type CircuitBreakerPolicy,
  type IPolicy,
  type RetryPolicy,
} from 'cockatiel';
import type { PolicyConfig } from '../config/types';
import type { ProbeResult } from '../probes/probe';

export type BreakerState = 'closed' | 'half-open' | 'open';

export interface CheckPolicy {
  /** retry → breaker → timeout (breaker → timeout when retry.attempts is 1: `single`) */
  policy: IPolicy;
  /** breaker → timeout, one attempt (same breaker instance as `policy`) */
  single: IPolicy;
  retry: RetryPolicy;
  breaker: CircuitBreakerPolicy;
}

const probeFailed = (result: unknown) => !(result as ProbeResult | undefined)?.ok;

/**
 * The one retry → breaker → timeout builder, for checks and for notification
 * delivery. `failedResult` says which resolved results count as failures (a
 * probe's `ok: false`); a caller whose failures are all thrown passes
 * `() => false`.
 */
export function buildPolicy(config: Pick<PolicyConfig, 'timeout' | 'retry' | 'breaker'>, failedResult: (result: unknown) => boolean = probeFailed): CheckPolicy {
  const failed = failedResult;
  const breaker = circuitBreaker(handleAll.orWhenResult(failed), {
    halfOpenAfter: config.breaker.halfOpenAfter,
    breaker: new ConsecutiveBreaker(config.breaker.failures),
  });
  // Once a failed attempt has opened the breaker, another attempt could only be
  // rejected: stop retrying at once instead of waiting a backoff for nothing.
  const breakerLetsCallsThrough = () => breaker.state === CircuitState.Closed || breaker.state === CircuitState.HalfOpen;
  const retryPolicy = retry(
    handleWhen((err) => !isBreakerRejection(err) && breakerLetsCallsThrough()).orWhenResult((result) => failed(result) && breakerLetsCallsThrough()),
    {
      maxAttempts: config.retry.attempts - 1,
      backoff: config.retry.jitter
        ? new ExponentialBackoff({ initialDelay: config.retry.backoff.initial, maxDelay: config.retry.backoff.max, generator: decorrelatedJitterGenerator })
        : new ExponentialBackoff({ initialDelay: config.retry.backoff.initial, maxDelay: config.retry.backoff.max, generator: noJitterGenerator }),
    },
  );
  // abortOnReturn: false — cockatiel aborts the attempt's signal after every call by default, which
  // costs a DOMException (with its stack) per attempt. Every probe removes its abort listeners when it
  // settles, so an abort after the call has returned reaches no one; the timeout still aborts at once.
  const perAttemptTimeout = timeout(config.timeout, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false });
  const single = wrap(breaker, perAttemptTimeout);
  // One attempt in all (retry.attempts 1): the retry policy would only run it once more through its
  // executor, with the same result or error, and never retry; `single` is that run without it.
  return { policy: config.retry.attempts > 1 ? wrap(retryPolicy, breaker, perAttemptTimeout) : single, single, retry: retryPolicy, breaker };
}

/** Rejected because the breaker is open (or isolated): no call was made. */
export function isBreakerRejection(err: unknown): boolean {
  return isBrokenCircuitError(err) || isIsolatedCircuitError(err);
}

/**
 * The per-attempt timeout fired. Not cockatiel's isTaskCancelledError: in
 * 3.2.1 that guard tests for `isBulkheadRejectedError` and so never matches a
 * TaskCancelledError (every timeout would be reported as a plain failure).
 */
export function isTimeoutError(err: unknown): boolean {
  return err instanceof TaskCancelledError || (err instanceof Error && (err as { isTaskCancelledError?: unknown }).isTaskCancelledError === true);
}

export function breakerState(breaker: CircuitBreakerPolicy): BreakerState {
  switch (breaker.state) {
    case CircuitState.Closed:
      return 'closed';
    case CircuitState.HalfOpen:
      return 'half-open';
    default:
      return 'open'; // Open and Isolated both reject calls
  }
}

export const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };
