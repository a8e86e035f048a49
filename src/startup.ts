/**
 * Start-up failures in words: what could not start, where, and the system's
 * code — `port 9464 on 0.0.0.0 is already in use (EADDRINUSE)` — instead of
 * a driver's text or an object. The CLI prints `message` and exits 1.
 */

/** A start-up failure whose message is complete as it stands (no stack, no cause needed to understand it). */
export class StartupError extends Error {
  override readonly name = 'StartupError';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

const LISTEN_PROBLEMS: Record<string, string> = {
  EADDRINUSE: 'is already in use',
  EACCES: 'may not be opened by this user (a port below 1024 needs CAP_NET_BIND_SERVICE)',
  EADDRNOTAVAIL: 'names an address this machine does not have',
  ENOTFOUND: 'names a host that does not resolve',
  EAI_AGAIN: 'names a host that does not resolve (temporary DNS failure)',
};

/** The errno code of a listen failure; gRPC reports it only inside its message ("errors: [listen EADDRINUSE: …]"). */
export function listenErrorCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code !== '') return code;
  const text = err instanceof Error ? err.message : String(err);
  return /\b(E[A-Z_]{3,}|EAI_AGAIN)\b/.exec(text)?.[1];
}

/**
 * `what` (e.g. "port", "gRPC port") `port` on `host` could not be listened on.
 * Known codes get words; anything else keeps the original text after the place.
 */
export function listenFailure(err: unknown, what: string, host: string, port: number): StartupError {
  const code = listenErrorCode(err);
  const problem = code ? LISTEN_PROBLEMS[code] : undefined;
  if (problem && code) return new StartupError(`${what} ${port} on ${host} ${problem} (${code})`, code);
  const text = err instanceof Error ? err.message : String(err);
  return new StartupError(`${what} ${port} on ${host} could not be opened: ${text}`, code);
}

/** Any thrown value as one line of text (never "[object Object]"). */
export function failureText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}
