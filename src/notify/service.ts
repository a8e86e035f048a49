/**
 * Notifications (SPEC §7): turns state changes into messages for every
 * configured target that wants them, one delivery queue per target.
 *
 * Which changes: a check going DOWN (from UP, or from UNKNOWN on its first
 * result) and a check coming back UP from DOWN. Operator resets (→ UNKNOWN)
 * are not news. The first verdict after a start or a reset (UNKNOWN → x) is
 * compared with what each target was last told (kept durable with
 * state.redis): told DOWN and now UP → the recovery; told DOWN and still DOWN
 * → nothing (counted as a suppressed duplicate); never told, or told UP, and
 * now UP → nothing.
 *
 * Ids are stable (outbox.ts eventId), and delivery is at-least-once through
 * the outbox (delivery.ts): see docs/notifications.md, "Delivery guarantee".
 *
 * Per target: `checks` / `groups` select checks; `minSeverity: critical`
 * keeps only critical checks (a recovery has the severity of its check); and
 * `cooldown` sends at most one message per check and state per window. A
 * change suppressed by the cooldown is not forgotten: when the window ends, if
 * the check's state differs from the last one the target was told, that state
 * is sent (with the number of changes folded into it), so a flapping check
 * pages once yet the last message always tells the current truth.
 *
 * Metrics (recorded through the NotifyMetrics port below, made by
 * telemetry/instruments.ts), attribute `notification.target`:
 *   healthcheck.notifications.sent                  messages delivered
 *   healthcheck.notifications.failed                failed delivery attempts (each retry counts)
 *   healthcheck.notifications.dead                  messages given up (dead letters)
 *   healthcheck.notifications.redeliveries          failed rounds scheduled again
 *   healthcheck.notifications.folded                waiting messages folded into a newer one
 *   healthcheck.notifications.duplicates_suppressed DOWNs a target had already been told
 *   healthcheck.notifications.queue.depth           (gauge) messages waiting
 *   healthcheck.notifications.queue.oldest_age      (gauge, s) age of the oldest waiting message
 */
import type { NotificationConfig } from '../config/schema';
import type { CheckState, Transition } from '../health/state';
import type { Redactor } from '../redact';
import { DeadLetterList, type DeadLetter } from './dead-letters';
import { TargetDelivery, type DeliveryOutcome } from './delivery';
import { eventId, type OutboxStore, type PendingMessage, type StoredOutbox, type Told } from './outbox';
import { SlackTarget } from './slack';
import type { NotificationEvent, Target } from './target';
import { WebhookTarget } from './webhook';

export function createTarget(config: NotificationConfig): Target {
  switch (config.kind) {
    case 'webhook':
      return new WebhookTarget(config);
    case 'slack':
      return new SlackTarget(config);
    case 'email':
      // nodemailer is loaded only when an email target is configured
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return new (require('./email') as typeof import('./email')).EmailTarget(config, config.timeout);
  }
}

/** What notification delivery records (the port telemetry/instruments.ts `notifyMetrics` implements); by target name. */
export interface NotifyMetrics {
  sent(target: string): void;
  failed(target: string): void;
  dead(target: string): void;
  attempt(target: string, outcome: 'success' | 'failure' | 'timeout'): void;
  redelivered(target: string): void;
  folded(target: string, count: number): void;
  duplicate(target: string): void;
  /** the queue gauges read `queues` at each collection */
  observeQueues(queues: () => Iterable<{ target: string; pending: number; oldestAgeMs: number }>): void;
}

const NO_METRICS: NotifyMetrics = {
  sent() {},
  failed() {},
  dead() {},
  attempt() {},
  redelivered() {},
  folded() {},
  duplicate() {},
  observeQueues() {},
};

interface CooldownEntry {
  sentAt: Map<string, number>;
  /** the last state queued for this target: what it was, or is being, told */
  told: Told | undefined;
  suppressed: number;
  timer: NodeJS.Timeout | undefined;
}

interface TargetSlot {
  config: NotificationConfig;
  delivery: TargetDelivery;
  cooldown: Map<string, CooldownEntry>;
}

export interface NotificationServiceOptions {
  targets: NotificationConfig[];
  maxDeadLetters: number;
  service: string;
  redactor: () => Redactor;
  /** the current state of a check (for the message sent when a cooldown ends) */
  currentState: (check: string) => CheckState | undefined;
  /** the incident a check is in, if any */
  openIncident?: (check: string) => string | null;
  onDeadLettersChange?: (letters: readonly DeadLetter[], dropped: number) => void;
  /** the durable outbox (state.redis); without it, pending messages and what was told live in memory */
  store?: OutboxStore;
  log?: (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => void;
  /** where deliveries are counted (telemetry/instruments.ts notifyMetrics); default: nowhere */
  metrics?: NotifyMetrics;
  now?: () => number;
  /** a target built from its config (tests substitute nothing: default createTarget) */
  createTarget?: (config: NotificationConfig) => Target;
}

export class NotificationService {
  readonly deadLetters: DeadLetterList;
  private readonly slots = new Map<string, TargetSlot>();
  private readonly metrics: NotifyMetrics;
  private readonly now: () => number;
  private service: string;
  private closing = false;
  private maxDead: number;

  constructor(private readonly options: NotificationServiceOptions) {
    this.now = options.now ?? Date.now;
    this.service = options.service;
    this.maxDead = options.maxDeadLetters;
    this.metrics = options.metrics ?? NO_METRICS;
    this.metrics.observeQueues(() => [...this.slots].map(([target, slot]) => ({ target, pending: slot.delivery.pending, oldestAgeMs: slot.delivery.oldestAgeMs() })));
    this.deadLetters = new DeadLetterList(options.maxDeadLetters, options.onDeadLettersChange, (letter) =>
      this.log('warn', { target: letter.target, check: letter.event.check, eventId: letter.id }, `dead letter dropped (list full): ${letter.target} ${letter.event.check} → ${letter.event.to}`),
    );
    this.configure(options.targets, options.service);
  }

  get targetNames(): string[] {
    return [...this.slots.keys()];
  }

  /**
   * (Re)build the targets. A target whose config is unchanged keeps its queue,
   * breaker and cooldown memory; a changed one is rebuilt (its queued
   * messages are handed over); a removed one is closed.
   */
  configure(targets: NotificationConfig[], service: string, maxDeadLetters?: number): void {
    this.service = service;
    if (maxDeadLetters !== undefined) {
      this.maxDead = maxDeadLetters;
      this.deadLetters.setMax(maxDeadLetters);
    }
    const next = new Map(targets.map((t) => [t.name, t]));
    const handedOver = new Map<string, { messages: PendingMessage[]; cooldown: Map<string, CooldownEntry> }>();
    for (const [name, slot] of [...this.slots]) {
      const config = next.get(name);
      if (config && JSON.stringify(config) === JSON.stringify(slot.config)) continue;
      this.slots.delete(name);
      for (const entry of slot.cooldown.values()) {
        clearTimeout(entry.timer);
        entry.timer = undefined;
      }
      // a changed target keeps its waiting messages and what it was told
      if (config) handedOver.set(name, { messages: slot.delivery.handOver(), cooldown: slot.cooldown });
      void slot.delivery.close(0);
    }
    for (const config of targets) {
      if (this.slots.has(config.name)) continue;
      const target = (this.options.createTarget ?? createTarget)(config);
      const delivery = new TargetDelivery(target, config, this.deliveryHooks(), this.options.redactor, { store: this.options.store, now: this.now });
      const handed = handedOver.get(config.name);
      this.slots.set(config.name, { config, delivery, cooldown: handed?.cooldown ?? new Map() });
      if (handed) delivery.resume(handed.messages);
    }
  }

  /**
   * What an earlier process left in the outbox (state.redis): the messages
   * still to deliver, resumed in their order, and what each target was told,
   * so the first verdicts after a restart are compared with it (a recovery
   * that happened while the sidecar was down is sent; a check still DOWN is
   * not paged again). Targets no longer configured are ignored.
   */
  restore(stored: StoredOutbox): void {
    for (const [name, slot] of this.slots) {
      for (const [check, told] of Object.entries(stored.told[name] ?? {})) {
        const entry = this.entry(slot, check);
        // something told since this process started is newer
        if (entry.told === undefined && isTold(told)) entry.told = told;
      }
      const pending = stored.pending[name];
      if (pending?.length) slot.delivery.resume(pending);
    }
  }

  /** A state change from the HealthStore. Never blocks: messages are queued. */
  notify(transition: Transition, incidentId: string | null): void {
    if (this.closing || (transition.to !== 'UP' && transition.to !== 'DOWN')) return;
    const state = transition.state;
    const reconcile = transition.from !== 'UP' && transition.from !== 'DOWN'; // first verdict after a start or a reset
    const event: NotificationEvent = {
      id: eventId(this.service, transition.check, transition.to, incidentId, transition.at),
      check: transition.check,
      kind: transition.kind,
      critical: state.critical,
      severity: state.critical ? 'critical' : 'warning',
      from: transition.from,
      to: transition.to,
      message: this.options.redactor().text(transition.message),
      at: transition.at,
      incidentId,
      suppressed: 0,
      service: this.service,
    };
    for (const slot of this.slots.values()) {
      if (!wants(slot.config, state)) continue;
      if (!reconcile) {
        if (isNews(transition.from, transition.to)) this.admit(slot, event);
        continue;
      }
      // compared with what this target was last told, not with UNKNOWN
      const told = this.entry(slot, transition.check).told;
      if (transition.to === 'UP' ? told?.status === 'DOWN' : told?.status !== 'DOWN') {
        // a recovery the caller could not name an incident for closes the one the target was told of: its id follows
        const closes = incidentId ?? told?.incidentId ?? null;
        const id = closes === incidentId ? event.id : eventId(this.service, transition.check, transition.to, closes, transition.at);
        this.admit(slot, { ...event, id, from: told?.status ?? transition.from, incidentId: closes });
      } else if (transition.to === 'DOWN') {
        this.metrics.duplicate(slot.config.name);
        this.log('info', { target: slot.config.name, check: transition.check, incidentId: told?.incidentId }, `not notifying ${slot.config.name} again: it was already told ${transition.check} is DOWN`);
      }
    }
  }

  /** GET /admin/notifications/pending: what waits for delivery, per target, oldest first */
  listPending(): { target: string; id: string; check: string; to: string; queuedAt: number; attempts: number; nextAttemptAt: number; lastError?: string }[] {
    return [...this.slots].flatMap(([target, slot]) =>
      slot.delivery.list().map((m) => ({ target, id: m.event.id, check: m.event.check, to: m.event.to, queuedAt: m.queuedAt, attempts: m.attempts, nextAttemptAt: m.nextAttemptAt, ...(m.lastError ? { lastError: m.lastError } : {}) })),
    );
  }

  /** GET /admin/notifications/dead */
  listDead(): { deadLetters: DeadLetter[]; dropped: number; max: number } {
    return { deadLetters: this.deadLetters.list(), dropped: this.deadLetters.dropped, max: this.maxDead };
  }

  /**
   * POST /admin/notifications/dead: take the matching letters off the list and
   * deliver each once more now. A letter whose target no longer exists stays
   * dead (with that reason). Resolves with one result per letter.
   */
  async retryDead(filter: { id?: string; target?: string } = {}): Promise<{ id: string; target: string; check: string; delivered: boolean; error?: string }[]> {
    const letters = this.deadLetters.take(filter);
    return Promise.all(
      letters.map(async (letter) => {
        const slot = this.slots.get(letter.target);
        let outcome: DeliveryOutcome;
        if (!slot) {
          outcome = { delivered: false, attempts: 0, error: `target "${letter.target}" is no longer configured` };
          this.deadLetters.add({ ...letter, error: outcome.error!, failedAt: this.now() });
        } else outcome = await slot.delivery.redeliver(letter);
        return { id: letter.id, target: letter.target, check: letter.event.check, delivered: outcome.delivered, ...(outcome.error ? { error: outcome.error } : {}) };
      }),
    );
  }

  /** resolves when every target's queue is empty (tests, shutdown) */
  async idle(): Promise<void> {
    await Promise.all([...this.slots.values()].map((s) => s.delivery.idle()));
  }

  /** Stop: give queued messages up to graceMs, then dead-letter the rest. */
  async close(graceMs = 2000): Promise<void> {
    this.closing = true;
    for (const slot of this.slots.values()) for (const entry of slot.cooldown.values()) clearTimeout(entry.timer);
    await Promise.all([...this.slots.values()].map((s) => s.delivery.close(graceMs)));
  }

  private entry(slot: TargetSlot, check: string): CooldownEntry {
    let entry = slot.cooldown.get(check);
    if (!entry) {
      entry = { sentAt: new Map(), told: undefined, suppressed: 0, timer: undefined };
      slot.cooldown.set(check, entry);
    }
    return entry;
  }

  private admit(slot: TargetSlot, event: NotificationEvent): void {
    const entry = this.entry(slot, event.check);
    const now = this.now();
    const cooldown = slot.config.cooldown;
    const sentAt = entry.sentAt.get(event.to);
    if (sentAt !== undefined && now - sentAt < cooldown) {
      entry.suppressed++;
      if (!entry.timer) {
        const e = entry;
        e.timer = setTimeout(() => {
          e.timer = undefined;
          this.afterCooldown(slot, event.check, e);
        }, sentAt + cooldown - now);
        e.timer.unref();
      }
      return;
    }
    slot.delivery.enqueue({ ...event, suppressed: entry.suppressed });
    entry.suppressed = 0;
    entry.sentAt.set(event.to, now);
    entry.told = { status: event.to, incidentId: event.incidentId, at: event.at };
    this.options.store?.tell(slot.config.name, event.check, entry.told);
  }

  /** the cooldown that held back a change has ended: tell the current state if the target was not told it last */
  private afterCooldown(slot: TargetSlot, check: string, entry: CooldownEntry): void {
    if (this.closing || this.slots.get(slot.config.name) !== slot) return;
    const state = this.options.currentState(check);
    if (!state || (state.status !== 'UP' && state.status !== 'DOWN') || state.status === entry.told?.status) {
      entry.suppressed = 0;
      return;
    }
    const incidentId = this.options.openIncident?.(check) ?? (state.status === 'UP' ? (entry.told?.incidentId ?? null) : null);
    const at = state.lastChangeAt ?? this.now();
    this.admit(slot, {
      id: eventId(this.service, check, state.status, incidentId, at),
      check,
      kind: state.kind,
      critical: state.critical,
      severity: state.critical ? 'critical' : 'warning',
      from: entry.told?.status ?? 'UNKNOWN',
      to: state.status,
      message: this.options.redactor().text(state.message),
      at,
      incidentId,
      suppressed: 0,
      service: this.service,
    });
  }

  private deliveryHooks() {
    return {
      sent: (target: Target, event: NotificationEvent) => {
        this.metrics.sent(target.name);
        this.metrics.attempt(target.name, 'success');
        this.log('info', { target: target.name, check: event.check, to: event.to, eventId: event.id }, `notification sent to ${target.name}: ${event.check} → ${event.to}`);
      },
      failed: (target: Target, event: NotificationEvent, error: string) => {
        this.metrics.failed(target.name);
        this.metrics.attempt(target.name, error.startsWith('timed out') ? 'timeout' : 'failure');
        this.log('warn', { target: target.name, check: event.check, eventId: event.id, error }, `notification to ${target.name} failed: ${error}`);
      },
      retrying: (target: Target, message: PendingMessage, delayMs: number) => {
        this.metrics.redelivered(target.name);
        this.log('warn', { target: target.name, check: message.event.check, eventId: message.event.id, attempts: message.attempts, retryInMs: delayMs }, `notification to ${target.name} not delivered yet (${message.lastError}); next round in ${delayMs < 1000 ? `${delayMs} ms` : `${Math.round(delayMs / 1000)} s`}`);
      },
      folded: (target: Target, event: NotificationEvent, count: number) => {
        this.metrics.folded(target.name, count);
      },
      dead: (letter: DeadLetter) => {
        this.metrics.dead(letter.target);
        this.deadLetters.add(letter);
        this.log('warn', { target: letter.target, check: letter.event.check, eventId: letter.id, error: letter.error, attempts: letter.attempts }, `notification to ${letter.target} given up after ${letter.attempts} attempt(s): ${letter.error}`);
      },
    };
  }

  private log(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void {
    this.options.log?.(level, fields, message);
  }
}

export function isNews(from: string, to: string): boolean {
  return (to === 'DOWN' && from !== 'DOWN') || (to === 'UP' && from === 'DOWN');
}

function isTold(value: unknown): value is Told {
  const t = value as Told;
  return !!t && (t.status === 'UP' || t.status === 'DOWN') && typeof t.at === 'number';
}

function wants(config: NotificationConfig, state: CheckState): boolean {
  if (config.checks && !config.checks.includes(state.name)) return false;
  if (config.groups && !config.groups.some((g) => state.groups.includes(g))) return false;
  if (config.minSeverity === 'critical' && !state.critical) return false;
  return true;
}
