/**
 * The one probe interface (cockatiel's IPolicy is the model: small and uniform).
 * A probe answers "is the dependency healthy?" once per call. A dependency that
 * answers wrongly resolves `{ ok: false }`; one that cannot be reached rejects.
 * Either way the runner turns it into data; callers never see exceptions.
 */
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { CheckConfig, CheckKindSpec } from '../config/types';
import { ProbeFailure } from '../errors';
import type { Redactor } from '../redact';
import type { ProbeMetrics } from './instruments';
import type { CertExpiryRegistry } from './tls-expiry';

export interface ProbeResult {
  ok: boolean;
  /** short, human-readable, already free of secrets */
  message: string;
  /** what the answer reported besides ok/message (http: status code, body size, redirects, phase timings) */
  response?: ProbeResponse;
}

/** Facts a probe reports about the answer it got (shown as `response` in /health/{check}); never secrets. */
export type ProbeResponse = Readonly<Record<string, number | string | Readonly<Record<string, number>>>>;

export interface Probe {
  /**
   * One attempt. Must stop using the network promptly when `signal` aborts, and must not count
   * on an abort after it has settled: the policy aborts the signal only on a timeout or at
   * shutdown, never after an attempt that returned in time (src/policy/build.ts).
   */
  run(signal: AbortSignal): Promise<ProbeResult>;
  /** Release connections; the probe may not be used afterwards. */
  close(): Promise<void>;
}

export interface ProbeContext {
  redactor: Redactor;
  /** called when a kept connection drops between runs (lets the scheduler re-probe at once) */
  onConnectionLost?: (reason: string) => void;
  /** where a TLS probe records the certificates it sees (the healthcheck.tls.cert_expiry gauge); none: kept by nobody */
  certExpiry?: CertExpiryRegistry;
  /** where the probe's connection gauge and http phases are recorded (telemetry/instruments.ts); none: not recorded */
  metrics?: ProbeMetrics;
}

export type ProbeFactory<C extends CheckConfig = CheckConfig> = (check: C, context: ProbeContext) => Probe;

/**
 * Everything about one check kind, exported by its module in probes/ and listed
 * in registry.ts: the config schema, the placeholder target and the secret
 * fields (for the config loader), the probe itself, how its messages name the
 * target, and how the effective check is shown in diagnostics.
 */
export interface ProbeKind<C extends CheckConfig = CheckConfig> extends CheckKindSpec {
  /** one probe for a check of this kind; a driver it needs is loaded here, not at import */
  create(check: C, context: ProbeContext): Probe;
  secrets(check: C): string[];
  /** what is probed, as the probe's messages name it (e.g. "redis host:6379") */
  target(check: C): string;
  /** the check as admin diagnostics show it: secret fields masked (Redactor.value then runs over it as well) */
  redact(check: C, redactor: Redactor): object;
}

/**
 * Add `listener` with the method of the emitter's class, past a method patched
 * onto the instance. The http instrumentation binds every ClientRequest and
 * IncomingMessage it traces to the request's context by patching their
 * on/once/… methods: each listener added through them costs a wrapper closure,
 * a WeakMap entry and, at each call, a context switch (another closure and an
 * arguments array). A listener that starts nothing (no span, no request) and
 * only settles the probe's own promise needs no context: the code awaiting that
 * promise resumes in its own. For events an emitter fires at most once per
 * request (socket, close, end, aborted) or whose later calls the listener ignores.
 */
export function listenUnbound(emitter: EventEmitter, event: string, listener: (...args: any[]) => void): void {
  (Object.getPrototypeOf(emitter) as EventEmitter).on.call(emitter, event, listener);
}

/** Reject with the signal's reason as soon as it aborts. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal, onAbort?: () => void): Promise<T> {
  if (signal.aborted) {
    onAbort?.();
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const listener = () => {
      onAbort?.();
      reject(abortError(signal));
    };
    signal.addEventListener('abort', listener, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', listener);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener('abort', listener);
        reject(err);
      },
    );
  });
}

export function abortError(signal: AbortSignal): Error {
  const err = new Error('aborted');
  err.name = 'AbortError';
  (err as Error & { cause?: unknown }).cause = signal.reason;
  return err;
}

/** Plain words for the network errors a probe meets; the original text follows in brackets. */
const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EPIPE: 'connection closed by peer',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (temporary)',
};

/** Message of an unknown thrown value, with driver noise trimmed. */
export function errorMessage(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return errorMessage(err.errors[0]);
  if (err instanceof ProbeFailure) return err.message; // already worded for people
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = err.message || err.name;
    if (code === 'ECONNRESET' && message === 'socket hang up') return 'connection closed before a response (socket hang up)';
    const words = code ? NETWORK_ERRORS[code] : undefined;
    if (words) return `${words} (${message.includes(code!) ? message : `${code}: ${message}`})`;
    return code && !message.includes(code) ? `${code}: ${message}` : message;
  }
  return String(err);
}

/** Ask a kept connection to close politely (QUIT, Terminate) for at most `ms`, then drop it whatever happened. */
export async function closePolitely(polite: () => Promise<unknown>, drop: () => void, ms = 1000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([polite().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
  drop();
}

/** A network error that means "the kept connection was dead", not "the server is down". */
export function isStaleConnectionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : '';
  return code === 'ECONNRESET' || code === 'EPIPE' || /Connection is closed|Connection terminated|socket hang up|write after end/i.test(message);
}

/**
 * Close a socket at once, with an RST rather than a FIN. A peer that hangs
 * (stopped reading, black-holed) never answers a FIN, which leaves its end in
 * CLOSE_WAIT and ours in FIN_WAIT for minutes; an RST frees both now. A socket
 * still connecting, already ended, or a TLS socket (whose handle is not a plain
 * TCP one) is simply destroyed.
 */
export function hardClose(socket: Socket | null | undefined): void {
  if (!socket || socket.destroyed) return;
  socket.on('error', () => undefined);
  // Once end() has been called libuv is shutting the handle down and refuses the
  // reset (EINVAL), and Node then never closes the handle: a leaked fd that the
  // event loop polls forever. Such a socket has sent its FIN already; destroy it.
  if (socket.connecting || socket.writableEnded) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
