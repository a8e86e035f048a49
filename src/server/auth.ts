/**
 * API keys: `Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys are
 * compared as SHA-256 digests with timingSafeEqual, so neither the content nor
 * the length of a key leaks through timing. Only the key's name is ever logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './respond';

export interface KeySpec {
  name: string;
  key: string;
}

/** `bearer`: a JWT-shaped token that is no key, when bearer JWTs are accepted (server.auth.jwt); /api/v1 verifies it */
export type Identity = { kind: 'anonymous' } | { kind: 'invalid' } | { kind: 'key'; name: string } | { kind: 'bearer'; token: string };

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

const MALFORMED = Symbol('malformed Authorization');

const digest = (value: string) => createHash('sha256').update(value).digest();

export class Authenticator {
  private readonly keys: { name: string; digest: Buffer }[];

  constructor(
    keys: readonly KeySpec[],
    private readonly acceptJwt = false,
  ) {
    this.keys = keys.map((k) => ({ name: k.name, digest: digest(k.key) }));
  }

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  identify(req: IncomingMessage): Identity {
    const presented = presentedKey(req);
    if (presented === undefined) return { kind: 'anonymous' };
    if (presented === MALFORMED) return { kind: 'invalid' };
    const candidate = digest(presented);
    let match: string | undefined;
    // compare against every key (no early exit) so timing does not reveal which matched
    for (const key of this.keys) if (timingSafeEqual(candidate, key.digest) && match === undefined) match = key.name;
    if (match === undefined && this.acceptJwt && JWT_SHAPE.test(presented)) return { kind: 'bearer', token: presented };
    return match === undefined ? { kind: 'invalid' } : { kind: 'key', name: match };
  }
}

/**
 * The key a request presents. `Authorization` must use the Bearer scheme:
 * `Authorization: <key>` without a scheme, `Basic …` or any other scheme is
 * a wrong key (401 invalid_key), never compared as a key — so the documented
 * forms are the only ones that work (docs/security.md).
 */
function presentedKey(req: IncomingMessage): string | typeof MALFORMED | undefined {
  const header = req.headers.authorization;
  if (typeof header === 'string' && header.trim() !== '') {
    const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
    return m ? m[1] : MALFORMED; // a malformed Authorization header is a wrong key, not "no key"
  }
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.trim() !== '') return apiKey.trim();
  return undefined;
}

export const REALM = 'health-sidecar';

/** 401 for a request without a key, or with a key that matches none. */
export function unauthorized(identity: Identity): HttpError {
  if (identity.kind === 'invalid') {
    return new HttpError(401, 'invalid_key', 'the API key is not valid', { 'www-authenticate': `Bearer realm="${REALM}", error="invalid_token"` });
  }
  return new HttpError(401, 'missing_key', 'an API key is required: Authorization: Bearer <key> or X-API-Key: <key>', { 'www-authenticate': `Bearer realm="${REALM}"` });
}

/**
 * Admin endpoints: the caller's key name, or an HttpError — 403 when no key is
 * configured at all (the admin API is off), 401 without a valid key.
 */
export function requireKey(authenticator: Authenticator, identity: Identity): string {
  if (!authenticator.enabled) throw new HttpError(403, 'admin_disabled', 'admin API disabled: no keys configured (server.auth.keys)');
  if (identity.kind !== 'key') throw unauthorized(identity);
  return identity.name;
}
