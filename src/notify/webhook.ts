/**
 * `webhook`: a JSON POST. With `secret`, the body is signed with HMAC-SHA256
 * and the signature sent as `X-Signature-256: sha256=<hex>` (GitHub's scheme),
 * so a receiver can verify the sender and the body. The body of a retried
 * delivery is byte-identical (same event id, same signature), and the
 * event id is also sent as `Idempotency-Key`.
 */
import { createHmac } from 'node:crypto';
import type { NotificationConfig } from '../config/schema';
import { VERSION } from '../version';
import { HttpPostTarget, postBody, type NotificationEvent } from './target';

type WebhookConfig = Extract<NotificationConfig, { kind: 'webhook' }>;

export function webhookPayload(event: NotificationEvent): Record<string, unknown> {
  return {
    type: 'healthcheck.state_changed',
    id: event.id,
    service: event.service,
    check: event.check,
    checkKind: event.kind,
    critical: event.critical,
    severity: event.severity,
    from: event.from,
    to: event.to,
    message: event.message,
    time: new Date(event.at).toISOString(),
    incidentId: event.incidentId,
    suppressed: event.suppressed,
    ...(event.timeline ? { timeline: event.timeline.map((step) => ({ status: step.status, time: new Date(step.at).toISOString() })) } : {}),
  };
}

export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class WebhookTarget extends HttpPostTarget {
  readonly kind = 'webhook' as const;

  constructor(private readonly config: WebhookConfig) {
    super(config.name);
  }

  async send(event: NotificationEvent, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify(webhookPayload(event));
    const headers: Record<string, string> = {
      ...this.config.headers,
      'content-type': 'application/json',
      'user-agent': `otel-health-sidecar/${VERSION}`,
      'x-event-id': event.id,
      // the same on every attempt and after a restart: receivers drop duplicates by it
      'idempotency-key': event.id,
    };
    if (this.config.secret) headers['x-signature-256'] = signBody(this.config.secret, body);
    await postBody(this.config.url, body, headers, signal, `webhook ${this.name}`);
  }
}
