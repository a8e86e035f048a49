/**
 * Delivery to one target: a queue worked off in order by one async worker
 * (the state change that enqueues never waits for it, so probes are never
 * held up by a slow receiver), each message through cockatiel policies,
 * outermost first:
 *   retry (attempts, exponential backoff with decorrelated jitter)
 *   → circuit breaker (consecutive failures, halfOpenAfter)
 *   → timeout (per attempt; the request is aborted)
 * A rejection by the open breaker is not retried: the message goes straight
 * to the dead letters, where an operator can retry it. What still fails after
 * every attempt becomes a dead letter too; nothing is dropped silently.
 */
import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  circuitBreaker,
  decorrelatedJitterGenerator,
  handleAll,
  handleWhen,
  retry,
  timeout,
  wrap,
  type IPolicy,
} from 'cockatiel';
import type { NotificationConfig } from '../config/schema';
import { isBreakerRejection, isTimeoutError } from '../policy/build';
import type { Redactor } from '../redact';
import type { DeadLetter } from './dead-letters';
import type { NotificationEvent, Target } from './target';

/** messages waiting per target; beyond this a new message becomes a dead letter at once */
export const MAX_QUEUE = 1000;

export type DeliveryPolicyConfig = Pick<NotificationConfig, 'timeout' | 'retry' | 'breaker'>;

export interface DeliveryHooks {
  sent(target: Target, event: NotificationEvent): void;
  /** one failed attempt */
  failed(target: Target, event: NotificationEvent, error: string): void;
  dead(letter: DeadLetter): void;
}

export interface DeliveryOutcome {
  delivered: boolean;
  attempts: number;
  error?: string;
}

export class TargetDelivery {
  private queue: NotificationEvent[] = [];
  private working: Promise<void> | undefined;
  private policy: IPolicy;
  private closed = false;
  private readonly abort = new AbortController();

  constructor(
    readonly target: Target,
    private readonly config: DeliveryPolicyConfig,
    private readonly hooks: DeliveryHooks,
    private readonly redactor: () => Redactor,
  ) {
    this.policy = this.buildPolicy(config.retry.attempts);
  }

  get pending(): number {
    return this.queue.length + (this.working ? 1 : 0);
  }

  /** Queue a message and return at once. */
  enqueue(event: NotificationEvent): void {
    if (this.closed) {
      this.hooks.dead(this.letter(event, 'not sent: the sidecar was shutting down', 0));
      return;
    }
    if (this.queue.length >= MAX_QUEUE) {
      this.hooks.dead(this.letter(event, `not sent: ${MAX_QUEUE} messages already waiting for this target`, 0));
      return;
    }
    this.queue.push(event);
    this.working ??= this.work().finally(() => {
      this.working = undefined;
    });
  }

  /**
   * An operator's retry of a dead letter: the receiver is said to be back, so
   * the breaker starts closed again, and one attempt is made now.
   */
  async redeliver(letter: DeadLetter): Promise<DeliveryOutcome> {
    this.policy = this.buildPolicy(this.config.retry.attempts);
    const single = this.buildPolicy(1);
    const outcome = await this.deliver(letter.event, single);
    if (!outcome.delivered) this.hooks.dead({ ...this.letter(letter.event, outcome.error ?? 'failed', letter.attempts + outcome.attempts) });
    return outcome;
  }

  /** resolves when the queue is empty */
  async idle(): Promise<void> {
    while (this.working) await this.working;
  }

  /**
   * Stop: wait up to graceMs for the queue, then abort what is in flight;
   * whatever was not delivered becomes a dead letter.
   */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    if (this.working) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    const left = this.queue.splice(0);
    this.abort.abort();
    await this.idle().catch(() => undefined);
    for (const event of left) this.hooks.dead(this.letter(event, 'not sent: the sidecar was shutting down', 0));
    await this.target.close().catch(() => undefined);
  }

  private async work(): Promise<void> {
    for (let event = this.queue.shift(); event; event = this.queue.shift()) {
      const outcome = await this.deliver(event, this.policy);
      if (!outcome.delivered) this.hooks.dead(this.letter(event, outcome.error ?? 'failed', outcome.attempts));
    }
  }

  private async deliver(event: NotificationEvent, policy: IPolicy): Promise<DeliveryOutcome> {
    let attempts = 0;
    try {
      await policy.execute(async ({ signal }) => {
        attempts++;
        try {
          await this.target.send(event, signal);
        } catch (err) {
          this.hooks.failed(this.target, event, this.describe(err));
          throw err;
        }
      }, this.abort.signal);
      this.hooks.sent(this.target, event);
      return { delivered: true, attempts };
    } catch (err) {
      return { delivered: false, attempts, error: this.describe(err) };
    }
  }

  private describe(err: unknown): string {
    if (isBreakerRejection(err)) return `circuit breaker of target ${this.target.name} is open: not attempted`;
    if (isTimeoutError(err) || (err as Error)?.name === 'AbortError') {
      return this.abort.signal.aborted ? 'cancelled: the sidecar was shutting down' : `timed out after ${this.config.timeout}ms`;
    }
    const e = err as { message?: string; cause?: { code?: string; message?: string } };
    const cause = e?.cause?.code ?? e?.cause?.message;
    return this.redactor().text(`${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`);
  }

  private letter(event: NotificationEvent, error: string, attempts: number): DeadLetter {
    return { id: event.id, target: this.target.name, event, error, attempts, failedAt: Date.now() };
  }

  private buildPolicy(attempts: number): IPolicy {
    const retryPolicy = retry(
      handleWhen((err) => !isBreakerRejection(err)),
      {
        maxAttempts: attempts - 1,
        backoff: new ExponentialBackoff({ initialDelay: this.config.retry.backoff.initial, maxDelay: this.config.retry.backoff.max, generator: decorrelatedJitterGenerator }),
      },
    );
    const breaker = circuitBreaker(handleAll, { halfOpenAfter: this.config.breaker.halfOpenAfter, breaker: new ConsecutiveBreaker(this.config.breaker.failures) });
    return wrap(retryPolicy, breaker, timeout(this.config.timeout, TimeoutStrategy.Aggressive));
  }
}
