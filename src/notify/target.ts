/**
 * The one interface every notification target implements (webhook, slack,
 * email), and the event they are given. A target only formats and sends one
 * message; retry, breaker, cooldown and dead letters live in delivery.ts and
 * service.ts, the same for every kind.
 */
import type { CheckKind } from '../config/types';
import type { CheckStatus } from '../health/state';

export type Severity = 'warning' | 'critical';

export interface NotificationEvent {
  /**
   * Stable per piece of news (outbox.ts eventId: from the incident and the
   * transition), the same on every attempt and after a restart: receivers
   * drop duplicates by it (webhook `Idempotency-Key`, email `Message-ID`).
   */
  id: string;
  check: string;
  kind: CheckKind;
  critical: boolean;
  /** critical checks are `critical`, others `warning` */
  severity: Severity;
  from: CheckStatus;
  to: CheckStatus;
  message: string;
  /** ms epoch of the state change */
  at: number;
  incidentId: string | null;
  /** state changes folded into this message by the cooldown since the last one sent */
  suppressed: number;
  /** telemetry.serviceName: which sidecar is talking */
  service: string;
  /**
   * Present when undelivered messages of this check were folded into this one
   * (the receiver was unreachable): every state told, oldest first.
   */
  timeline?: { status: CheckStatus; at: number }[];
}

export interface Target {
  readonly name: string;
  readonly kind: 'webhook' | 'slack' | 'email';
  /** Deliver one message; resolves when the receiver accepted it, rejects otherwise. */
  send(event: NotificationEvent, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** A target that POSTs each message over HTTP (webhook, slack): no connection of its own to close. */
export abstract class HttpPostTarget implements Target {
  abstract readonly kind: 'webhook' | 'slack';
  abstract send(event: NotificationEvent, signal: AbortSignal): Promise<void>;
  constructor(readonly name: string) {}
  async close(): Promise<void> {}
}

/** A receiver's refusal (HTTP status, SMTP reply), with what it said. */
export class DeliveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeliveryError';
  }
}

/** "DOWN 10:02:05Z–10:09:40Z, UP since 10:09:40Z" (UTC, to the second) */
export function timelineText(timeline: readonly { status: CheckStatus; at: number }[]): string {
  const time = (at: number) => new Date(at).toISOString().slice(11, 19) + 'Z';
  return timeline
    .map((step, i) => {
      const next = timeline[i + 1];
      return next ? `${step.status} ${time(step.at)}–${time(next.at)}` : `${step.status} since ${time(step.at)}`;
    })
    .join(', ');
}

export function headline(event: NotificationEvent): string {
  if (event.timeline && event.timeline.length > 1) return `${event.check}: ${timelineText(event.timeline)}`;
  if (event.to === 'UP') return `${event.check} recovered: UP (was ${event.from})`;
  return `${event.check} is ${event.to}${event.from === 'UNKNOWN' ? '' : ` (was ${event.from})`}`;
}

/** POST a body and read the answer (bounded); non-2xx is a DeliveryError naming the status. */
export async function postBody(url: string, body: string, headers: Record<string, string>, signal: AbortSignal, what: string): Promise<void> {
  // fetch refuses URLs with credentials: send them as Basic auth instead (unless a header already authorizes)
  const target = new URL(url);
  if ((target.username || target.password) && !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
    const user = decodeURIComponent(target.username);
    const pass = decodeURIComponent(target.password);
    headers = { ...headers, authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
  }
  target.username = '';
  target.password = '';
  const response = await fetch(target, { method: 'POST', body, headers, signal, redirect: 'error' });
  const text = (await response.text().catch(() => '')).slice(0, 200);
  if (response.status < 200 || response.status > 299) {
    throw new DeliveryError(`${what} answered HTTP ${response.status}${text ? `: ${text.replace(/\s+/g, ' ').trim()}` : ''}`);
  }
}
