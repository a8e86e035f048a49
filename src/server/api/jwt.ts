/**
 * Bearer JWTs on /api/v1 (server.auth.jwt): verified with `jose` against the
 * issuer's JWKS (fetched and cached by jose), the configured issuer and
 * audience, and an expiry; `alg: none` and symmetric algorithms are refused.
 * The configured claim's values map to scopes. Any failure is a 401 whose
 * message says what was wrong, never the token.
 */
import type { ApiScope } from '../../config/schema';
import { HttpError } from '../respond';
import { REALM } from '../auth';
import type { Caller } from './monitors';

export interface JwtSettings {
  issuer: string;
  jwksUri: string;
  audience: string;
  claim: string;
  scopes: Record<string, ApiScope[]>;
}

export interface BearerVerifier {
  verify(token: string): Promise<Caller>;
}

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

const refused = (why: string) => new HttpError(401, 'invalid_token', `bearer token refused: ${why}`, { 'www-authenticate': `Bearer realm="${REALM}", error="invalid_token"` });

export function createBearerVerifier(settings: () => JwtSettings | undefined): BearerVerifier {
  let cached: { uri: string; jwks: unknown } | undefined;
  return {
    async verify(token) {
      const jwt = settings();
      if (!jwt) throw refused('bearer JWTs are not accepted (server.auth.jwt)');
      const jose = await import('jose');
      if (cached?.uri !== jwt.jwksUri) cached = { uri: jwt.jwksUri, jwks: jose.createRemoteJWKSet(new URL(jwt.jwksUri), { timeoutDuration: 3000, cooldownDuration: 5000 }) };
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jose.jwtVerify(token, cached.jwks as Parameters<typeof jose.jwtVerify>[1], { issuer: jwt.issuer, audience: jwt.audience, algorithms: ALGORITHMS, requiredClaims: ['exp'] }));
      } catch (err) {
        const e = err as { code?: string; claim?: string; message?: string };
        const why =
          e.code === 'ERR_JWT_EXPIRED' ? 'expired'
          : e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' ? `claim ${e.claim ?? ''} is not what this server accepts (${e.claim === 'iss' ? 'wrong issuer' : e.claim === 'aud' ? 'wrong audience' : 'invalid'})`
          : e.code === 'ERR_JOSE_ALG_NOT_ALLOWED' || e.code === 'ERR_JOSE_NOT_SUPPORTED' ? 'its algorithm is not accepted'
          : e.code === 'ERR_JWKS_NO_MATCHING_KEY' ? "no key of the issuer's JWKS matches it"
          : e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' ? 'the signature does not verify'
          : e.code === 'ERR_JWKS_TIMEOUT' || e.code === 'ERR_JOSE_GENERIC' ? "the issuer's JWKS could not be read"
          : 'not a valid JWT';
        throw refused(why);
      }
      const raw = payload[jwt.claim];
      const values = typeof raw === 'string' ? raw.split(/\s+/).filter(Boolean) : Array.isArray(raw) ? raw.filter((v): v is string => typeof v === 'string') : [];
      const scopes = new Set<ApiScope>();
      for (const value of values) for (const scope of jwt.scopes[value] ?? []) scopes.add(scope);
      const sub = typeof payload.sub === 'string' ? payload.sub.slice(0, 100) : 'unknown';
      return { actor: `jwt:${sub}`, scopes };
    },
  };
}
