/**
 * Deeper PostgreSQL checks, the parts that need no connection: TLS options
 * from `sslmode` and `tls`, and the connection-headroom verdict.
 *
 * TLS with libpq's `sslmode` meanings (pg 8 treats prefer, require
 * and verify-ca as verify-full and warns on stderr; pg 9 will switch to libpq's
 * meanings): the sslmode and the `tls` block become the `ssl` option of
 * pg.Client here, and every ssl* parameter is taken out of the URL so that
 * pg-connection-string cannot override it (it reads sslrootcert/sslcert/sslkey
 * files itself and its `ssl` wins over the explicit option).
 */
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import type { ProbeResult } from './probe';

export const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** URL query parameters that configure TLS in libpq / pg-connection-string. */
const SSL_PARAMS = ['sslmode', 'ssl', 'sslrootcert', 'sslcert', 'sslkey', 'sslpassword', 'sslcrl', 'sslnegotiation', 'uselibpqcompat'];

export interface PostgresTls {
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
}

/** The URL without TLS parameters, and the sslmode it named (if any). */
export function splitSslParams(url: string): { url: string; sslmode: string | undefined; others: string[] } {
  const parsed = new URL(url);
  const sslmode = parsed.searchParams.get('sslmode') ?? undefined;
  const others = SSL_PARAMS.filter((name) => name !== 'sslmode' && parsed.searchParams.has(name));
  for (const name of SSL_PARAMS) parsed.searchParams.delete(name);
  return { url: parsed.toString(), sslmode, others };
}

/**
 * libpq semantics:
 *  - disable: no TLS;
 *  - require: TLS, the certificate is not verified — unless `tls.ca` is given,
 *    then it is verified like verify-ca (libpq does the same when a root
 *    certificate file exists);
 *  - verify-ca: TLS, the chain must lead to `tls.ca`; the host name is not checked;
 *  - verify-full: TLS, chain and host name (or `tls.serverName`) verified.
 */
export function postgresSslOption(mode: SslMode, tls: PostgresTls | undefined): false | ConnectionOptions {
  if (mode === 'disable') return false;
  const options: ConnectionOptions = {};
  if (tls?.ca !== undefined) options.ca = tls.ca;
  if (tls?.cert !== undefined) options.cert = tls.cert;
  if (tls?.key !== undefined) options.key = tls.key;
  const verifyChain = mode === 'verify-ca' || mode === 'verify-full' || (mode === 'require' && tls?.ca !== undefined);
  options.rejectUnauthorized = verifyChain;
  if (mode === 'verify-full') {
    // pg sets `servername` to the URL's host after our options (SNI), so another
    // name to verify is given through the identity check instead
    const name = tls?.serverName;
    if (name !== undefined) options.checkServerIdentity = (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert);
  } else {
    options.checkServerIdentity = () => undefined;
  }
  return options;
}

/** The URL's sslmode, the check's sslmode, or disable (pg's default, and a URL's without ?sslmode=). */
export function effectiveSslMode(check: { url: string; sslmode?: SslMode }): SslMode {
  return check.sslmode ?? (splitSslParams(check.url).sslmode as SslMode | undefined) ?? 'disable';
}

/**
 * Client connections (other backends — autovacuum, WAL sender, background
 * workers — do not take a max_connections slot) against max_connections.
 */
export const POSTGRES_CONNECTIONS_QUERY = `SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS connections,
  current_setting('max_connections')::int AS max_connections,
  current_setting('superuser_reserved_connections')::int AS reserved`;

export interface ConnectionsRow {
  connections: number;
  maxConnections: number;
  /** superuser_reserved_connections: slots only superusers may use */
  reserved: number;
}

/** `maxConnectionsRatio`: connections / max_connections must not exceed the ratio. */
export function evaluateConnections(row: ConnectionsRow, maxRatio: number): ProbeResult {
  const ratio = row.connections / row.maxConnections;
  const text = `connections ${row.connections} of max_connections ${row.maxConnections} (${Math.round(ratio * 100)}%, ${row.reserved} reserved for superusers)`;
  if (ratio > maxRatio) return { ok: false, message: `${text}, more than maxConnectionsRatio ${maxRatio}` };
  return { ok: true, message: text };
}
