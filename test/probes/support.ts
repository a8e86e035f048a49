/**
 * Shared helpers for the probe and policy tests: build a CheckConfig from YAML
 * through the real loader and wire it to a real probe and a CheckRunner. Tests
 * never assert wall-clock upper bounds (a busy machine only adds time).
 */
import { parseConfig } from '../../src/probes/registry';
import type { CheckConfig } from '../../src/config/types';
import { CheckRunner, type AttemptObserver } from '../../src/health/runner';
import type { Outcome, RunResult } from '../../src/health/state';
import { waitFor } from '../helpers/servers';
import type { BreakerState } from '../../src/policy/build';
import { createProbe, type AnyCheckConfig } from '../../src/probes/registry';
import { Redactor } from '../../src/redact';
import type { ProbeMetrics } from '../../src/probes/instruments';
import type { CertExpiryRegistry } from '../../src/probes/tls-expiry';

export interface CheckOptions {
  timeout?: string;
  attempts?: number;
  backoffInitial?: string;
  backoffMax?: string;
  jitter?: boolean;
  breakerFailures?: number;
  halfOpenAfter?: string;
}

/**
 * One check parsed by the real config loader. `body` is the kind-specific YAML
 * (indented by four spaces, i.e. at the level of `name:`), e.g. `kind: http\n    url: …`.
 * Policy knobs default to: one attempt, a breaker that never opens.
 */
export function checkFromYaml(body: string, options: CheckOptions = {}): { check: AnyCheckConfig; redactor: Redactor; secrets: string[] } {
  const text = [
    'defaults:',
    '  interval: 10m',
    `  timeout: ${options.timeout ?? '1s'}`,
    '  retry:',
    `    attempts: ${options.attempts ?? 1}`,
    `    backoff: { initial: ${options.backoffInitial ?? '50ms'}, max: ${options.backoffMax ?? '1s'} }`,
    `    jitter: ${options.jitter ?? false}`,
    '  breaker:',
    `    failures: ${options.breakerFailures ?? 1000}`,
    `    halfOpenAfter: ${options.halfOpenAfter ?? '30s'}`,
    'checks:',
    '  - name: probe-under-test',
    `    ${body.trim()}`,
    '',
  ].join('\n');
  const config = parseConfig(text, 'probe-test.yaml', { env: {} });
  const check = config.checks[0];
  if (!check) throw new Error('test config produced no check');
  return { check, redactor: new Redactor(config.secrets), secrets: config.secrets };
}

export interface ObservedAttempt {
  outcome: Outcome;
  durationMs: number;
}

export class RecordingObserver implements AttemptObserver {
  readonly attempts: ObservedAttempt[] = [];
  readonly breakerStates: BreakerState[] = [];
  attemptFinished(_check: CheckConfig, outcome: Outcome, durationMs: number): void {
    this.attempts.push({ outcome, durationMs });
  }
  breakerChanged(_check: CheckConfig, state: BreakerState): void {
    this.breakerStates.push(state);
  }
  outcomes(): Outcome[] {
    return this.attempts.map((a) => a.outcome);
  }
}

/**
 * A real probe for the check behind a CheckRunner (recording the certificates it sees in `certExpiry`, its
 * connections and http phases in `metrics`); remember to close() it.
 */
export function runnerFor(check: CheckConfig, redactor: Redactor, observer?: AttemptObserver, certExpiry?: CertExpiryRegistry, metrics?: ProbeMetrics): CheckRunner {
  return new CheckRunner(check, createProbe(check, { redactor, certExpiry, ...(metrics ? { metrics } : {}) }), redactor, observer);
}

/**
 * Runs `runner` until a run succeeds and returns that result: "the probe recovers" (or "the connection is
 * up") on a machine busy enough that one run may miss a short timeout. Fails after a hang guard.
 */
export async function recovers(runner: CheckRunner, what = 'a successful run'): Promise<RunResult> {
  const outcomes: string[] = [];
  let success: RunResult | undefined;
  await waitFor(
    async () => {
      const result = await runner.run('manual');
      outcomes.push(result.outcome);
      if (result.outcome === 'success') success = result;
      return success !== undefined;
    },
    { what: `${what} (runs so far: ${outcomes.join(', ')})`, intervalMs: 1 },
  );
  return success!;
}

/** Assert helper: a message must not contain any of the given secrets. */
export function leaks(message: string, secrets: string[]): string[] {
  return secrets.filter((secret) => secret.length > 0 && message.includes(secret));
}
