/**
 * Delivery to one target: a queue worked off in order by one async worker
 * (the state change that enqueues never waits for it, so probes are never
 * held up by a slow receiver). Each round of attempts goes through the
 * checks' cockatiel policy builder (policy/build.ts), outermost first:
 *   retry (attempts, exponential backoff with decorrelated jitter)
 *   → circuit breaker (consecutive failures, halfOpenAfter)
 *   → timeout (per attempt; the request is aborted)
 * A round that fails (the receiver refused, timed out, or the target's
 * breaker is open) does not lose the message: it stays at the head of the
 * queue and is tried again after a capped exponential backoff with full
 * jitter (`redelivery`), for `retention`; only then is it a dead letter.
 * Messages behind it wait (per-target order, hence per-check order). While
 * the receiver is failing, a newer message of a check that already has one
 * waiting folds into it (outbox.ts `fold`), so the queue holds at most one
 * waiting message per check plus the one in flight, and the receiver hears
 * the whole story once when it is back.
 *
 * With an OutboxStore (state.redis) every message is written before its
 * first attempt and removed when delivered or given up, so a restart — even
 * kill -9 — resumes it (NotificationService.restore).
 */
import type { IPolicy } from 'cockatiel';
import type { NotificationConfig } from '../config/schema';
import { buildPolicy, isBreakerRejection, isTimeoutError } from '../policy/build';
import type { Redactor } from '../redact';
import type { DeadLetter } from './dead-letters';
import { fold, type OutboxStore, type PendingMessage } from './outbox';
import type { NotificationEvent, Target } from './target';

/** messages waiting per target; beyond this a new message becomes a dead letter at once (folding keeps it to about one per check) */
export const MAX_QUEUE = 1000;

export type DeliveryPolicyConfig = Pick<NotificationConfig, 'timeout' | 'retry' | 'breaker' | 'retention' | 'redelivery'>;

export interface DeliveryHooks {
  sent(target: Target, event: NotificationEvent): void;
  /** one failed attempt */
  failed(target: Target, event: NotificationEvent, error: string): void;
  dead(letter: DeadLetter): void;
  /** a round failed; the message waits `delayMs` for its next round */
  retrying?(target: Target, message: PendingMessage, delayMs: number): void;
  /** `count` waiting messages of a check were folded into a newer one */
  folded?(target: Target, event: NotificationEvent, count: number): void;
}

export interface DeliveryOutcome {
  delivered: boolean;
  attempts: number;
  error?: string;
  /** not attempted: the target's breaker was open */
  rejected?: boolean;
}

export interface DeliveryOptions {
  store?: OutboxStore;
  now?: () => number;
  /** jitter source in [0, 1) (tests make it fixed) */
  random?: () => number;
  /** a timer (tests inject one); returns its cancel */
  schedule?: (fn: () => void, ms: number) => () => void;
}

const realSchedule = (fn: () => void, ms: number): (() => void) => {
  const timer = setTimeout(fn, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

export class TargetDelivery {
  /** waiting messages, by seq (the head is the next one attempted) */
  private queue: PendingMessage[] = [];
  private inFlight: PendingMessage | undefined;
  private working: Promise<void> | undefined;
  private parked: { wake: () => void } | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly written = new WeakMap<PendingMessage, Promise<boolean>>();
  private policy: IPolicy;
  private closed = false;
  /** the last round failed (and no delivery succeeded since): the receiver is down or refusing */
  private failing = false;
  private seq = 0;
  private readonly abort = new AbortController();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly schedule: (fn: () => void, ms: number) => () => void;

  constructor(
    readonly target: Target,
    private readonly config: DeliveryPolicyConfig,
    private readonly hooks: DeliveryHooks,
    private readonly redactor: () => Redactor,
    private readonly options: DeliveryOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.schedule = options.schedule ?? realSchedule;
    this.policy = this.buildPolicy(config.retry.attempts).policy;
  }

  /** messages not yet delivered (waiting or in flight) */
  get pending(): number {
    return this.queue.length;
  }

  /** ms since the oldest undelivered message was queued (0: none) */
  oldestAgeMs(): number {
    if (this.queue.length === 0) return 0;
    return Math.max(0, this.now() - Math.min(...this.queue.map((m) => m.queuedAt)));
  }

  /** the waiting messages, oldest first (GET /admin/notifications/pending, tests) */
  list(): readonly PendingMessage[] {
    return this.queue;
  }

  /** Queue a message and return at once. */
  enqueue(event: NotificationEvent): void {
    if (this.closed) {
      this.hooks.dead(this.letter(event, 'not sent: the sidecar was shutting down', 0));
      return;
    }
    const now = this.now();
    let message: PendingMessage = { event, queuedAt: now, attempts: 0, rounds: 0, nextAttemptAt: now, seq: ++this.seq };
    // while the receiver is failing, a check's waiting messages fold into one; otherwise each is sent as it is
    const older = this.failing ? this.queue.filter((m) => m.event.check === event.check && m !== this.inFlight) : [];
    if (older.length > 0) {
      message = fold(older, message);
      this.queue = this.queue.filter((m) => !older.includes(m));
      this.hooks.folded?.(this.target, message.event, older.length);
    } else if (this.queue.length >= MAX_QUEUE) {
      this.hooks.dead(this.letter(event, `not sent: ${MAX_QUEUE} messages already waiting for this target`, 0));
      return;
    }
    this.insert(message);
    // the folded message is written before the ones it replaces are removed: a crash in between doubles, never loses
    this.persist(message);
    for (const m of older) if (m.event.id !== message.event.id) this.options.store?.remove(this.target.name, m.event.id);
    this.run();
  }

  /**
   * Messages kept in the outbox by an earlier process, resumed ahead of
   * anything queued since this one started (their seq order kept), and due
   * at once: the receiver may be back.
   */
  resume(messages: readonly PendingMessage[]): void {
    const known = new Set(this.queue.map((m) => m.event.id));
    const now = this.now();
    const restored = messages
      .filter((m) => isPending(m) && !known.has(m.event.id))
      .sort((a, b) => a.seq - b.seq)
      .map((m) => ({ ...m, nextAttemptAt: Math.min(m.nextAttemptAt, now) }));
    if (restored.length === 0) return;
    const waiting = this.queue.filter((m) => m !== this.inFlight);
    const ordered = [...(this.inFlight ? [this.inFlight] : []), ...restored, ...waiting];
    this.seq = 0;
    for (const m of ordered) m.seq = ++this.seq;
    this.queue = ordered;
    for (const m of [...restored, ...waiting]) this.persist(m);
    this.parked?.wake();
    this.run();
  }

  /** Take the waiting messages out (not the one in flight): a rebuilt target resumes them. */
  handOver(): PendingMessage[] {
    const taken = this.queue.filter((m) => m !== this.inFlight);
    this.queue = this.queue.filter((m) => m === this.inFlight);
    return taken;
  }

  /**
   * An operator's retry of a dead letter: the receiver is said to be back, so
   * the breaker starts closed again, and one attempt is made now.
   */
  async redeliver(letter: DeadLetter): Promise<DeliveryOutcome> {
    const fresh = this.buildPolicy(this.config.retry.attempts);
    this.policy = fresh.policy;
    const outcome = await this.deliver(letter.event, fresh.single);
    if (!outcome.delivered) this.hooks.dead({ ...this.letter(letter.event, outcome.error ?? 'failed', letter.attempts + outcome.attempts) });
    return outcome;
  }

  /** resolves when nothing is being attempted: the queue is empty, or every message waits for its redelivery time */
  idle(): Promise<void> {
    if (!this.working || this.parked) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stop: due messages get up to graceMs, then what is in flight is aborted.
   * What was not delivered stays in the outbox when it is durable (resumed by
   * the next start); in memory it becomes a dead letter.
   */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    this.parked?.wake();
    if (this.working) {
      let cancel: (() => void) | undefined;
      await Promise.race([this.working, new Promise<void>((resolve) => (cancel = realSchedule(resolve, graceMs)))]);
      cancel?.();
    }
    this.abort.abort();
    await this.working?.catch(() => undefined);
    const left = this.queue.splice(0);
    if (!this.options.store) for (const m of left) this.hooks.dead(this.letter(m.event, 'not sent: the sidecar was shutting down', m.attempts));
    await this.target.close().catch(() => undefined);
  }

  private insert(message: PendingMessage): void {
    const at = this.queue.findIndex((m) => m.seq > message.seq);
    if (at < 0) this.queue.push(message);
    else this.queue.splice(at, 0, message);
  }

  private persist(message: PendingMessage): void {
    const store = this.options.store;
    if (store) this.written.set(message, store.put(this.target.name, message, this.config.retention).catch(() => false));
  }

  private run(): void {
    if (this.parked) return; // its timer wakes it; a new message never jumps the backoff of the head
    this.working ??= this.work().finally(() => {
      this.working = undefined;
      this.settled();
    });
  }

  private settled(): void {
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private async work(): Promise<void> {
    for (;;) {
      const head = this.queue[0];
      if (!head) return;
      const now = this.now();
      if (head.nextAttemptAt > now) {
        if (this.closed) return; // not due within the grace: it stays in the outbox
        await this.park(head.nextAttemptAt - now);
        continue;
      }
      this.inFlight = head;
      await this.written.get(head); // written before the first attempt (false: Redis down — attempted anyway)
      const outcome = await this.deliver(head.event, this.policy);
      this.inFlight = undefined;
      head.attempts += outcome.attempts;
      if (outcome.delivered) {
        this.failing = false;
        this.queue.shift();
        this.options.store?.remove(this.target.name, head.event.id);
        continue;
      }
      if (this.abort.signal.aborted) return; // shutdown: stays queued (outbox) or becomes a dead letter (close)
      this.failing = true;
      head.rounds++;
      // a round the open breaker refused says nothing new about the receiver: keep what it last answered
      if (!outcome.rejected || !head.lastError) head.lastError = outcome.error ?? 'failed';
      const after = this.now();
      const deadline = head.queuedAt + this.config.retention;
      if (after >= deadline) {
        this.queue.shift();
        const retention = this.config.retention > 0 ? ` (not delivered within retention, ${head.rounds} round(s))` : '';
        this.hooks.dead(this.letter(head.event, `${head.lastError}${retention}`, head.attempts));
        this.options.store?.remove(this.target.name, head.event.id);
        continue;
      }
      // the last round is made at the end of the retention, not skipped
      const delay = Math.min(this.backoff(head.rounds), deadline - after);
      head.nextAttemptAt = after + delay;
      this.persist(head);
      this.hooks.retrying?.(this.target, head, delay);
    }
  }

  /** capped exponential backoff with full jitter: initial·2^(round−1), at most max, times [0.5, 1) */
  private backoff(round: number): number {
    const { initial, max } = this.config.redelivery;
    const base = Math.min(max, initial * 2 ** Math.min(30, round - 1));
    return Math.round(base * (0.5 + this.random() / 2));
  }

  private park(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const cancel = this.schedule(() => wake(), ms);
      const wake = () => {
        cancel();
        this.parked = undefined;
        resolve();
      };
      this.parked = { wake };
      this.settled();
    });
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
      return { delivered: false, attempts, error: this.describe(err), ...(isBreakerRejection(err) ? { rejected: true } : {}) };
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
    return { id: event.id, target: this.target.name, event, error, attempts, failedAt: this.now() };
  }

  /** the checks' builder (policy/build.ts), with decorrelated jitter; every failure of a send is thrown */
  private buildPolicy(attempts: number) {
    const { timeout, retry, breaker } = this.config;
    return buildPolicy({ timeout, retry: { attempts, backoff: retry.backoff, jitter: true }, breaker }, () => false);
  }
}

function isPending(value: unknown): value is PendingMessage {
  const m = value as PendingMessage;
  return !!m && !!m.event && typeof m.event.id === 'string' && typeof m.event.check === 'string' && typeof m.seq === 'number' && typeof m.queuedAt === 'number' && typeof m.nextAttemptAt === 'number';
}
