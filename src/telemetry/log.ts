/**
 * Structured JSON logs (pino). Lines written inside an active span carry
 * trace_id/span_id. Every message and field passes through the Redactor, so a
 * driver error that echoes a connection string cannot leak a password.
 */
import { trace, isSpanContextValid } from '@opentelemetry/api';
import pino, { type Logger, type DestinationStream } from 'pino';
import { Redactor } from '../redact';

export type { Logger };

let redactor = new Redactor();

/** Replace the secrets the log redacts (called on config load and reload). */
export function setLogRedactor(next: Redactor): void {
  redactor = next;
}

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: process.env.LOG_LEVEL ?? options.level ?? 'info',
      base: { service: 'otel-health-sidecar' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      messageKey: 'msg',
      mixin() {
        const context = trace.getActiveSpan()?.spanContext();
        return context && isSpanContextValid(context) ? { trace_id: context.traceId, span_id: context.spanId } : {};
      },
      hooks: {
        logMethod(args, method) {
          const redacted = args.map((arg) => redactor.value(arg instanceof Error ? { err: { type: arg.name, message: arg.message } } : arg));
          return method.apply(this, redacted as Parameters<typeof method>);
        },
      },
      serializers: { err: (err: Error) => ({ type: err?.name, message: redactor.text(String(err?.message ?? err)) }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
