/**
 * Structured JSON logs (pino). Lines written inside an active span carry
 * trace_id/span_id. Every message and field passes through the Redactor, so a
 * driver error that echoes a connection string cannot leak a password.
 */
import { context, trace, isSpanContextValid } from '@opentelemetry/api';
import pino, { type Logger, type DestinationStream } from 'pino';
import { LOG_LEVELS, parseLogLevel, type LogLevel } from '../config/schema';
import { Redactor } from '../redact';

export type { Logger };

/** where a logger made by createLogger keeps its Redactor (inherited by its child loggers) */
const REDACTION = Symbol('log redaction');

interface Redaction {
  current: Redactor;
}

/**
 * Replace the secrets `logger` (one made by createLogger, or a child of one)
 * redacts: called by the Sidecar on config load and reload. The Redactor
 * belongs to the logger, not to this module; another logger is left alone.
 */
export function setLogRedactor(logger: Logger, next: Redactor): void {
  const redaction = (logger as Logger & { [REDACTION]?: Redaction })[REDACTION];
  if (redaction) redaction.current = next;
}

/**
 * Run `fn` (a log call) as if inside the span of the run that caused it: its
 * line carries that run's trace_id/span_id on stdout and in the OTLP log record.
 */
export function inRunContext<T>(run: { traceId?: string; spanId?: string; traceFlags?: number } | undefined, fn: () => T): T {
  if (!run?.traceId || !run.spanId) return fn();
  const spanContext = { traceId: run.traceId, spanId: run.spanId, traceFlags: run.traceFlags ?? 0 };
  if (!isSpanContextValid(spanContext)) return fn();
  return context.with(trace.setSpanContext(context.active(), spanContext), fn);
}

/**
 * The level LOG_LEVEL names (any case; it wins over the config's log.level),
 * undefined when unset or empty; an Error naming the variable and the accepted
 * values when it names no level.
 */
export function logLevelFromEnv(env: NodeJS.ProcessEnv): LogLevel | undefined {
  const text = env.LOG_LEVEL;
  if (text === undefined || text.trim() === '') return undefined;
  const level = parseLogLevel(text);
  if (!level) throw new Error(`LOG_LEVEL=${JSON.stringify(text.slice(0, 40))} is not a log level; accepted (any case): ${LOG_LEVELS.join(', ')}`);
  return level;
}

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const level = options.level === undefined ? 'info' : parseLogLevel(options.level);
  if (!level) throw new Error(`log level ${JSON.stringify(options.level)} is not one of ${LOG_LEVELS.join(', ')}`);
  const redaction: Redaction = { current: new Redactor() };
  const logger = pino(
    {
      level,
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
          const redacted = args.map((arg) => redaction.current.value(arg instanceof Error ? { err: errorFields(arg) } : withErrorFields(arg)));
          return method.apply(this, redacted as Parameters<typeof method>);
        },
      },
      // the hook has already turned an Error into { type, message, code? }; a bare value becomes its text
      serializers: {
        err: (err: { type?: string; name?: string; message?: unknown; code?: unknown } | string) =>
          typeof err === 'object' && err !== null
            ? { type: err.type ?? err.name, message: redaction.current.text(String(err.message ?? '')), ...(err.code !== undefined ? { code: err.code } : {}) }
            : { message: redaction.current.text(String(err)) },
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
  // a child logger's prototype is its parent: children find the same Redaction
  Object.defineProperty(logger, REDACTION, { value: redaction });
  return logger;
}

/** An Error as plain fields: its message and name are not own enumerable properties, so a copy would lose them. */
function errorFields(err: Error): { type: string; message: string; code?: unknown } {
  const code = (err as NodeJS.ErrnoException).code;
  return { type: err.name, message: err.message, ...(code !== undefined ? { code } : {}) };
}

/** `{ err }` (or any top-level field holding an Error) with the Error turned into fields before redaction copies it. */
function withErrorFields(arg: unknown): unknown {
  if (!arg || typeof arg !== 'object' || Array.isArray(arg)) return arg;
  let out: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(arg as Record<string, unknown>)) {
    if (value instanceof Error) (out ??= { ...(arg as Record<string, unknown>) })[key] = errorFields(value);
  }
  return out ?? arg;
}
