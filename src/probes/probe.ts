/**
 * The one probe interface (cockatiel's IPolicy is the model: small and uniform).
 * A probe answers "is the dependency healthy?" once per call. A dependency that
 * answers wrongly resolves `{ ok: false }`; one that cannot be reached rejects.
 * Either way the runner turns it into data; callers never see exceptions.
 */
import type { CheckConfig } from '../config/types';
import type { Redactor } from '../redact';

export interface ProbeResult {
  ok: boolean;
  /** short, human-readable, already free of secrets */
  message: string;
}

export interface Probe {
  /** One attempt. Must stop using the network promptly when `signal` aborts. */
  run(signal: AbortSignal): Promise<ProbeResult>;
  /** Release connections; the probe may not be used afterwards. */
  close(): Promise<void>;
}

export interface ProbeContext {
  redactor: Redactor;
  /** called when a kept connection drops between runs (lets the scheduler re-probe at once) */
  onConnectionLost?: (reason: string) => void;
}

export type ProbeFactory<C extends CheckConfig = CheckConfig> = (check: C, context: ProbeContext) => Probe;

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

/** Message of an unknown thrown value, with driver noise trimmed. */
export function errorMessage(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return errorMessage(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = err.message || err.name;
    return code && !message.includes(code) ? `${code}: ${message}` : message;
  }
  return String(err);
}
