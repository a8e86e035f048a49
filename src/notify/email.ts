/**
 * `email`: SMTP through nodemailer. `secure: true` is TLS from the first byte
 * (port 465); otherwise STARTTLS is used when the server offers it, and
 * required with `requireTLS`. Certificates are verified unless
 * `tls.insecureSkipVerify`. The subject says what happened at a glance; the
 * headers carry check, state and incident id for mail filters.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type { NotificationConfig } from '../config/schema';
import { headline, DeliveryError, type NotificationEvent, type Target } from './target';

type EmailConfig = Extract<NotificationConfig, { kind: 'email' }>;

export function emailSubject(event: NotificationEvent): string {
  return `[${event.to}] ${headline(event)} — ${event.service}`;
}

export function emailText(event: NotificationEvent): string {
  return [
    headline(event),
    '',
    `Check:     ${event.check} (${event.kind}, ${event.critical ? 'critical' : 'not critical'})`,
    `State:     ${event.from} → ${event.to}`,
    `Message:   ${event.message}`,
    `Time:      ${new Date(event.at).toISOString()}`,
    `Incident:  ${event.incidentId ?? '-'}`,
    ...(event.suppressed > 0 ? [`Suppressed: ${event.suppressed} change(s) during the cooldown`] : []),
    `Service:   ${event.service}`,
    '',
  ].join('\n');
}

export class EmailTarget implements Target {
  readonly kind = 'email' as const;
  readonly name: string;
  private readonly transport: Transporter;

  constructor(
    private readonly config: EmailConfig,
    timeoutMs: number,
  ) {
    this.name = config.name;
    const smtp = config.email;
    this.transport = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      requireTLS: smtp.requireTLS,
      auth: smtp.user !== undefined ? { user: smtp.user, pass: smtp.pass ?? '' } : undefined,
      tls: {
        rejectUnauthorized: !(smtp.tls?.insecureSkipVerify ?? false),
        ...(smtp.tls?.ca ? { ca: smtp.tls.ca } : {}),
        ...(smtp.tls?.serverName ? { servername: smtp.tls.serverName } : {}),
      },
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      disableFileAccess: true,
      disableUrlAccess: true,
    });
  }

  async send(event: NotificationEvent, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new DeliveryError('cancelled');
    const smtp = this.config.email;
    try {
      await this.transport.sendMail({
        from: smtp.from,
        to: smtp.to,
        subject: emailSubject(event),
        // stable per event: a mail system that sees the same Message-ID twice (a redelivery) can drop it
        messageId: `<${event.id}@otel-health-sidecar>`,
        text: emailText(event),
        headers: {
          'X-Health-Check': event.check,
          'X-Health-State': event.to,
          'X-Health-Event-Id': event.id,
          ...(event.incidentId ? { 'X-Health-Incident': event.incidentId } : {}),
        },
      });
    } catch (err) {
      const e = err as { message?: string; responseCode?: number; code?: string };
      throw new DeliveryError(`email ${this.name}: ${e.responseCode ? `SMTP ${e.responseCode}: ` : e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}`);
    }
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
