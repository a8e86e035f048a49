/**
 * `slack`: Slack incoming-webhook format: `text` (notifications, fallback)
 * plus Block Kit blocks (a header line and fields). The webhook URL is the
 * credential, so it is a secret and never shown.
 */
import type { NotificationConfig } from '../config/schema';
import { headline, HttpPostTarget, postBody, type NotificationEvent } from './target';

type SlackConfig = Extract<NotificationConfig, { kind: 'slack' }>;

/** Slack mrkdwn needs &, < and > escaped */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function slackPayload(event: NotificationEvent): Record<string, unknown> {
  const icon = event.to === 'UP' ? ':large_green_circle:' : event.severity === 'critical' ? ':red_circle:' : ':large_orange_circle:';
  const text = `${icon} ${slackEscape(headline(event))}: ${slackEscape(event.message)}`;
  const fields = [
    `*Check*\n${slackEscape(event.check)} (${event.kind})`,
    `*State*\n${event.from} → ${event.to}`,
    `*Severity*\n${event.severity}`,
    `*Time*\n${new Date(event.at).toISOString()}`,
  ];
  if (event.incidentId) fields.push(`*Incident*\n${event.incidentId}`);
  if (event.suppressed > 0) fields.push(`*Suppressed*\n${event.suppressed} change(s) in cooldown`);
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `${icon} *${slackEscape(headline(event))}* — ${slackEscape(event.service)}` } },
      { type: 'section', fields: fields.map((f) => ({ type: 'mrkdwn', text: f })) },
      { type: 'context', elements: [{ type: 'mrkdwn', text: slackEscape(event.message) }, { type: 'mrkdwn', text: `event ${event.id}` }] },
    ],
  };
}

export class SlackTarget extends HttpPostTarget {
  readonly kind = 'slack' as const;

  constructor(private readonly config: SlackConfig) {
    super(config.name);
  }

  async send(event: NotificationEvent, signal: AbortSignal): Promise<void> {
    await postBody(this.config.url, JSON.stringify(slackPayload(event)), { 'content-type': 'application/json' }, signal, `slack ${this.name}`);
  }
}
