/**
 * The request target, parsed by us and not by `new URL(raw, base)`: the WHATWG
 * parser resolves `//livez` as a host named `livez` (path `/`, the status
 * page), `//x/admin/diagnostics` as host `x` + an admin path, collapses
 * `/x/../admin`, `%2e%2e` and backslashes — so a proxy rule by path prefix
 * in front of the sidecar and the sidecar itself could disagree about which
 * route a request reaches.
 *
 * Accepted: origin-form only (RFC 9112 §3.2.1): `/` + path + optional
 * `?query`. Everything else is a 400 `bad_request_target`: absolute-form
 * (`http://host/livez`), authority-form (`host:443`), asterisk-form (`*`),
 * a path starting `//`, a dot segment (`.`, `..`, `%2e`, `%2E%2e` …), a
 * backslash, a fragment `#`, a control character or space. What is left maps
 * to the route it names byte for byte: the pathname the router sees is the
 * raw path (the URL object built afterwards is only used for its query).
 */
import { HttpError } from './respond';

export interface RequestTarget {
  /** the raw path, exactly as sent (no decoding, no normalisation) */
  pathname: string;
  /** the raw query after `?`, without it ('' when none) */
  search: string;
}

const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;
// controls, space, DEL, backslash, fragment: never in an origin-form target we serve
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u0020\u007f\\#]/;

/** Parse an origin-form request target, or throw 400 saying what is wrong with it. */
export function parseRequestTarget(raw: string): RequestTarget {
  const bad = (why: string) => new HttpError(400, 'bad_request_target', `request target ${why}; only origin-form paths (/path?query) are served`);
  if (!raw.startsWith('/')) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) throw bad('is in absolute-form (scheme://host/…)');
    if (raw === '*') throw bad('is "*" (asterisk-form)');
    throw bad('does not start with "/"');
  }
  if (raw.startsWith('//')) throw bad('starts with "//" (would name a host, not a path)');
  if (FORBIDDEN.test(raw)) throw bad('contains a space, control character, backslash or "#"');
  const q = raw.indexOf('?');
  const pathname = q === -1 ? raw : raw.slice(0, q);
  const search = q === -1 ? '' : raw.slice(q + 1);
  for (const segment of pathname.split('/')) if (DOT_SEGMENT.test(segment)) throw bad('contains a dot segment ("." or "..")');
  return { pathname, search };
}

/**
 * The URL handlers read (`ctx.url.searchParams`). The target is already
 * validated, so the WHATWG parser can only percent-encode, never move it to
 * another path; the router matches the raw `pathname` all the same.
 */
export function targetUrl(raw: string): URL {
  return new URL(`http://sidecar.invalid${raw}`);
}
