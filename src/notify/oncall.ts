/**
 * What the on-call engineer sees and gets paged by, wired to the HealthStore:
 * latency statistics (every run), incidents (failing streaks and DOWN
 * periods), notifications (state changes), and their optional persistence in
 * Redis. The Sidecar owns one; it never touches the probe path: listeners
 * only record in memory and queue messages.
 */
import type { Logger } from 'pino';
import type { SidecarConfig } from '../config/types';
import { IncidentLog } from '../health/incidents';
import type { HealthStore } from '../health/state';
import { LatencyStats } from '../health/stats';
import { RedisHistory } from '../persist/redis';
import type { Redactor } from '../redact';
import { NotificationService } from './service';

export class OnCall {
  readonly stats: LatencyStats;
  readonly incidents: IncidentLog;
  readonly notifications: NotificationService;
  private history: RedisHistory | undefined;
  private historyUrl: string | undefined;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly store: HealthStore,
    private config: () => SidecarConfig,
    redactor: () => Redactor,
    private readonly logger: Logger,
  ) {
    const initial = config();
    const log = (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => this.logger[level](fields, message);
    this.stats = new LatencyStats((name) => this.config().checks.find((c) => c.name === name)?.interval);
    this.incidents = new IncidentLog(initial.state.maxIncidents, (list) => this.history?.saveIncidents(list));
    this.notifications = new NotificationService({
      targets: initial.notifications,
      maxDeadLetters: initial.state.maxDeadLetters,
      service: initial.telemetry.serviceName,
      redactor,
      currentState: (check) => store.get(check),
      openIncident: (check) => this.incidents.openFor(check)?.id ?? null,
      onDeadLettersChange: (letters, dropped) => this.history?.saveDeadLetters(letters, dropped),
      log,
    });
    if (initial.state.redis) {
      this.historyUrl = initial.state.redis;
      this.history = new RedisHistory({
        url: initial.state.redis,
        keyPrefix: initial.state.keyPrefix,
        redactor,
        log,
        onLoad: (stored) => {
          this.incidents.restore(stored.incidents);
          this.notifications.deadLetters.restore(stored.deadLetters, stored.dropped);
          // what happened before Redis answered is written together with what it held
          this.history?.saveIncidents(this.incidents.list().reverse());
          const dead = this.notifications.listDead();
          this.history?.saveDeadLetters(dead.deadLetters, dead.dropped);
        },
      });
    }
    this.unsubscribe.push(
      store.onRecord((name, run, state) => {
        this.stats.record(name, run);
        this.incidents.observeRun(name, run, state);
      }),
      // one listener, so the incident exists before the message naming it is queued
      store.onTransition((t) => {
        const incident = this.incidents.observeTransition(t);
        this.notifications.notify(t, incident?.id ?? null);
      }),
    );
  }

  /** read persisted history (if configured) before the first probe runs */
  async start(): Promise<void> {
    if (this.history && !(await this.history.start())) {
      this.logger.warn({ keyPrefix: this.config().state.keyPrefix }, 'state.redis not reachable at start: history starts in memory and is merged when Redis answers');
    }
  }

  /** a reloaded config: targets, bounds; checks that are gone close their incidents */
  applyConfig(next: SidecarConfig): void {
    this.notifications.configure(next.notifications, next.telemetry.serviceName, next.state.maxDeadLetters);
    this.incidents.setMax(next.state.maxIncidents);
    const known = new Set(next.checks.map((c) => c.name));
    this.incidents.closeMissing(known);
    for (const name of this.stats.names()) if (!known.has(name)) this.stats.remove(name);
    if (next.state.redis !== this.historyUrl) this.logger.warn('state.redis changed: takes effect on restart');
  }

  /** flush queued notifications (bounded), then persist and disconnect */
  async close(graceMs = 2000): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    await this.notifications.close(graceMs);
    await this.history?.close();
  }

  /** tests: wait for deliveries and writes */
  async settle(): Promise<void> {
    await this.notifications.idle();
    await this.history?.flush();
  }
}
