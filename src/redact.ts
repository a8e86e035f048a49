/**
 * Redaction in one place: every string that leaves the process (logs, /health
 * messages, diagnostics, span attributes, error messages from drivers) passes
 * through a Redactor. It removes the configured secrets verbatim and scrubs
 * credentials from anything that looks like a URL or connection string.
 */
export const REDACTED = '***';

/*
 * Fallback patterns, for credentials that were never configured as secrets
 * (a driver error echoing a connection string, a response body quoted in a
 * message). Each names what it matches; test/security/canary.test.ts holds the
 * table of shapes they must catch and ordinary text they must leave alone.
 */
// URL userinfo: scheme://user:password@host → scheme://user:***@host (up to the last @ before the path)
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)([^\s/?#]*)@/gi;
/**
 * A credential-named key and its value:
 *   form / query / libpq   password=x, client_secret=x, ?access_token=x&…
 *   JSON                   {"password":"x"}, 'api_key': 'x'
 *   header / YAML style    X-Api-Key: x, password: x
 * The key is a whole token: it starts the text or follows whitespace, a quote,
 * `{ , ; ? & ( [` — never a path segment (`/internal-secret: 200` is a URL
 * followed by a status, not a secret) — and ends with one of the words, so
 * `client_secret`, `access_token`, `x-api-key` count and `tokenizer`,
 * `passwords` do not.
 */
const KEY_VALUE =
  /(?<=^|[\s"'{,;?&(\[])([a-z0-9_.-]*?(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key))(["']?\s*[=:]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s"',;&})\]]+)/gi;
/** `Authorization: Bearer x`, `Proxy-Authorization: Basic x`, `authorization: x` (scheme kept, credential masked) */
const AUTHORIZATION = /(?<=^|[\s"'{,;])((?:proxy-)?authorization["']?\s*[:=]\s*["']?)((?:bearer|basic|digest|token|negotiate|apikey)\s+)?([^\s"',;]+)/gi;
/** `Cookie: a=b; c=d` / `Set-Cookie: …`: the whole value up to the end of the line or a quote */
const COOKIE = /(?<=^|[\s"'{,;])((?:set-)?cookie["']?\s*[:=]\s*["']?)([^\r\n"']+)/gi;

/** text() remembers at most this many results, of inputs up to this length */
const MEMO_MAX_ENTRIES = 256;
const MEMO_MAX_LENGTH = 256;

export class Redactor {
  private readonly secrets: string[];

  constructor(secrets: Iterable<string> = []) {
    // longest first so that a secret containing another is removed whole
    this.secrets = [...new Set([...secrets].filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
  }

  /** a Redactor that also removes `more` (e.g. environment values for one answer) */
  with(more: Iterable<string>): Redactor {
    return new Redactor([...this.secrets, ...more]);
  }

  /**
   * Recent results of text(), a pure function of its input for this Redactor: the same short
   * strings (success messages, span attribute values) come back on every probe run.
   */
  private readonly memo = new Map<string, string>();

  text(input: string): string {
    if (input.length > MEMO_MAX_LENGTH) return this.scrub(input);
    let out = this.memo.get(input);
    if (out === undefined) {
      out = this.scrub(input);
      if (this.memo.size >= MEMO_MAX_ENTRIES) this.memo.clear();
      this.memo.set(input, out);
    }
    return out;
  }

  private scrub(input: string): string {
    let out = input;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    // every pattern needs these characters to match: skip the regex scans when they are absent
    if (out.includes('@')) out = out.replace(URL_CREDENTIALS, `$1${REDACTED}@`);
    if (out.includes('=') || out.includes(':')) {
      out = out.replace(AUTHORIZATION, (_m, key: string, scheme: string | undefined) => `${key}${scheme ?? ''}${REDACTED}`);
      out = out.replace(COOKIE, (_m, key: string) => `${key}${REDACTED}`);
      out = out.replace(KEY_VALUE, (_m, key: string, sep: string, value: string) => `${key}${sep}${maskKeeping(value)}`);
    }
    return out;
  }

  /** a URL safe to show: password removed, user kept */
  url(input: string): string {
    try {
      const url = new URL(input);
      if (url.password) url.password = REDACTED;
      return this.text(url.toString());
    } catch {
      return this.text(input);
    }
  }

  /** deep copy of a JSON-like value with every string redacted and secret-named keys masked */
  value<T>(input: T, seen = new WeakSet<object>()): T {
    if (typeof input === 'string') return this.text(input) as T;
    if (!input || typeof input !== 'object') return input;
    if (seen.has(input as object)) return '[circular]' as T;
    seen.add(input as object);
    if (Array.isArray(input)) return input.map((item) => this.value(item, seen)) as T;
    const out: Record<string, unknown> = {};
    for (const [key, val] of Object.entries(input as Record<string, unknown>)) {
      out[key] = SECRET_KEY.test(key) && val !== undefined && val !== '' ? REDACTED : this.value(val, seen);
    }
    return out as T;
  }
}

/** a masked value keeps its quotes, so JSON stays JSON */
function maskKeeping(value: string): string {
  const quote = value[0];
  return (quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote) ? `${quote}${REDACTED}${quote}` : REDACTED;
}

const SECRET_KEY = /^(password|passwd|pass|pwd|secret|token|key|apikey|api_key|api-key|private_key|privatekey|authorization|proxy-authorization|cookie|set-cookie|x-api-key)$/i;
