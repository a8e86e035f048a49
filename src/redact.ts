/**
 * Redaction in one place: every string that leaves the process (logs, /health
 * messages, diagnostics, span attributes, error messages from drivers) passes
 * through a Redactor. It removes the configured secrets verbatim and scrubs
 * credentials from anything that looks like a URL or connection string.
 */
export const REDACTED = '***';

// scheme://user:password@host  → scheme://user:***@host
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)([^\s@/]*)@/gi;
// password=secret / "password":"secret" in libpq-style strings and JSON
const KEY_VALUE = /\b(password|passwd|pwd|secret|token|api[_-]?key)(\s*[=:]\s*"?)([^\s"',;&]+)/gi;

/** text() remembers at most this many results, of inputs up to this length */
const MEMO_MAX_ENTRIES = 256;
const MEMO_MAX_LENGTH = 256;

export class Redactor {
  private readonly secrets: string[];

  constructor(secrets: Iterable<string> = []) {
    // longest first so that a secret containing another is removed whole
    this.secrets = [...new Set([...secrets].filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
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
    // both patterns need these characters to match: skip the regex scan when they are absent
    if (out.includes('@')) out = out.replace(URL_CREDENTIALS, `$1${REDACTED}@`);
    if (out.includes('=') || out.includes(':')) out = out.replace(KEY_VALUE, `$1$2${REDACTED}`);
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

const SECRET_KEY = /^(password|passwd|pass|pwd|secret|token|key|apikey|api_key|api-key|private_key|privatekey|authorization|proxy-authorization|cookie|set-cookie|x-api-key)$/i;
