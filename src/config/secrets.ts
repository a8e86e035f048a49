/**
 * Which values of a config are secrets. Redaction removes every one of them
 * from logs, metrics, spans and responses; the check kinds name their own
 * secret fields (probes/*.ts `secrets`) with the helpers below.
 */
import type { NotificationConfig } from './schema';

/** header names whose values are always treated as secrets */
export const ALWAYS_SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key'];

/** header names that look like credentials even when not declared secret */
const SECRET_HEADER_NAME = /auth|token|secret|key|password|passwd|session|cookie|signature/i;

/**
 * A header whose value is a credential: always-secret (Authorization, Cookie …),
 * declared in `secretHeaders`, or named like one. Such values are redacted
 * everywhere and never follow a redirect to another origin.
 */
export function isCredentialHeader(name: string, declared: readonly string[]): boolean {
  const lower = name.toLowerCase();
  return ALWAYS_SECRET_HEADERS.includes(lower) || declared.some((h) => h.toLowerCase() === lower) || SECRET_HEADER_NAME.test(name);
}

/**
 * Values of credential headers (the always-secret ones, the declared ones and
 * any whose name looks like a credential), plus the token of "Scheme token".
 */
export function headerSecrets(headers: Record<string, string>, declared: readonly string[]): string[] {
  const secrets: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (isCredentialHeader(name, declared)) {
      secrets.push(value);
      const token = /^\s*\S+\s+(\S+)\s*$/.exec(value)?.[1]; // "Bearer abc" → abc as well
      if (token) secrets.push(token);
    }
  }
  return secrets;
}

/** The password of a URL, as written and decoded (none when there is none or the URL does not parse). */
export function urlSecrets(value: string | undefined): string[] {
  try {
    const url = value ? new URL(value) : undefined;
    return url?.password ? [url.password, decodeURIComponent(url.password)] : [];
  } catch {
    return []; // validated already
  }
}

/** Secrets of the notification targets and of the state store. */
export function notificationSecrets(config: { notifications: NotificationConfig[]; state: { redis?: string } }): string[] {
  const secrets = urlSecrets(config.state.redis);
  for (const target of config.notifications) {
    if (target.kind === 'webhook') {
      secrets.push(...urlSecrets(target.url));
      const url = new URL(target.url);
      if (url.password) {
        // what postBody sends for URL credentials: the Basic token is as secret as the password
        const basic = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
        secrets.push(Buffer.from(basic).toString('base64'));
      }
      if (target.secret) secrets.push(target.secret);
      secrets.push(...headerSecrets(target.headers, []));
    } else if (target.kind === 'slack') {
      // the incoming-webhook URL is the credential: its path holds the token
      secrets.push(target.url);
      const path = new URL(target.url).pathname;
      if (path.length > 8) secrets.push(path);
    } else if (target.email.pass) secrets.push(target.email.pass);
  }
  return secrets;
}

/** what telemetry.serviceName defaults to, and what is shown instead of a secret one */
export const DEFAULT_SERVICE_NAME = 'health-sidecar';

/**
 * The service name the sidecar shows and exports (status page title,
 * `service.name` on /metrics `target_info` and on spans, notifications).
 * A serviceName that is, or contains, a secret — it came from `${file:…}`,
 * whose contents are always secret — is never shown: the default is used.
 */
export function publicServiceName(config: { telemetry: { serviceName: string }; secrets: readonly string[] }): string {
  const name = config.telemetry.serviceName;
  return config.secrets.some((secret) => name.includes(secret)) ? DEFAULT_SERVICE_NAME : name;
}
