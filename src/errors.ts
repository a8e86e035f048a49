/** Error classes with stable codes (undici style): callers switch on `code`, never on message text. */

export interface ConfigProblem {
  line: number;
  column: number;
  /** dotted path to the key, e.g. checks[1].url; empty for file-level problems */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG_INVALID';
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatProblem(file: string, problem: ConfigProblem): string {
  const where = problem.line > 0 ? `${file}:${problem.line}:${problem.column}` : file;
  return problem.path ? `${where} ${problem.path}: ${problem.message}` : `${where}: ${problem.message}`;
}

/**
 * Why a run failed, for machines (alerts, dashboards, tests): a closed set,
 * carried by RunResult.errorCode, shown as `errorCode` in /health/{check}, and
 * set as the run span's `error.type` (OTel semantic conventions). Never
 * derived from message text by callers.
 */
export const PROBE_ERROR = {
  /** the dependency answered, but not healthily (HTTP status, body, query result, replication lag…) */
  unhealthy: 'ERR_PROBE_UNHEALTHY',
  /** an attempt took longer than the check's timeout */
  timeout: 'ERR_PROBE_TIMEOUT',
  /** no attempt was made: the check's circuit breaker is open */
  breakerOpen: 'ERR_BREAKER_OPEN',
  /** the network: refused, reset, unreachable, name not resolved */
  connect: 'ERR_PROBE_CONNECT',
  /** the dependency refused the credentials */
  auth: 'ERR_PROBE_AUTH',
  /** the TLS handshake or the certificate */
  tls: 'ERR_PROBE_TLS',
  /** the answer broke the protocol (aborted mid-body, redirect refused or looping, bad gRPC status) */
  protocol: 'ERR_PROBE_PROTOCOL',
  /** anything else */
  failed: 'ERR_PROBE_FAILED',
} as const;
export type ProbeErrorCode = (typeof PROBE_ERROR)[keyof typeof PROBE_ERROR];

/** A probe failed for a reason worth a specific message (auth failed, bad status…), and a code saying which. */
export class ProbeFailure extends Error {
  constructor(
    readonly code: ProbeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ProbeFailure';
  }
}

/** type guard (cockatiel style) */
export function isProbeFailure(err: unknown): err is ProbeFailure {
  return err instanceof ProbeFailure;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNABORTED', 'EADDRNOTAVAIL']);
const TLS_CODES = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|HOSTNAME_MISMATCH$|ERR_OSSL_)/;

/**
 * The code of a thrown failure: a ProbeFailure's own code (unless it is the
 * generic one and its cause says more), else what the Node/driver error code
 * of the error or its cause says.
 */
export function probeErrorCode(err: unknown): ProbeErrorCode {
  if (err instanceof ProbeFailure && err.code !== PROBE_ERROR.failed) return err.code;
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof AggregateError && e.errors.length) return probeErrorCode(e.errors[0]);
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (NETWORK_CODES.has(code)) return PROBE_ERROR.connect;
    if (TLS_CODES.test(code)) return PROBE_ERROR.tls;
  }
  return PROBE_ERROR.failed;
}
