import type { TLSSocket } from 'node:tls';
import type pg from 'pg';
import { z } from 'zod';
import { commonCheck, tlsSchema, urlWithSchemes } from '../config/schema';
import { urlSecrets } from '../config/secrets';
import type { KindCheckConfig } from '../config/types';
import { ProbeFailure, PROBE_ERROR, probeErrorCode } from '../errors';
import { evaluateConnections, effectiveSslMode, POSTGRES_CONNECTIONS_QUERY, postgresSslOption, splitSslParams, SSL_MODES } from './postgres-checks';
import { abortable, closePolitely, errorMessage, hardClose, isStaleConnectionError, type Probe, type ProbeContext, type ProbeKind, type ProbeResult } from './probe';
import { probeInstruments } from './instruments';
import { checkPostgresReplication } from './replication';
import { CertExpiryRegistry, certificateExpiry, minValidityVerdict, type CertExpiry } from './tls-expiry';
import { requirePg } from './pg-driver';

const schema = z
  .strictObject({
    ...commonCheck,
    kind: z.literal('postgres'),
    url: urlWithSchemes(['postgres', 'postgresql']),
    query: z.string().min(1).default('SELECT 1'),
    sslmode: z
      .enum(SSL_MODES)
      .optional()
      .describe(
        "TLS as libpq means it: disable (default), require (encrypted, not verified — unless tls.ca is given, then as verify-ca), verify-ca (the chain leads to tls.ca), verify-full (chain and host name). The URL's ?sslmode= is read as well",
      ),
    tls: tlsSchema
      .optional()
      .describe('ca (required by verify-ca), cert and key (client certificate), serverName (verify-full checks this name), minValidity; needs sslmode require, verify-ca or verify-full'),
    expectPrimary: z.boolean().optional().describe('true: fail on a standby (pg_is_in_recovery()); false: fail on a primary'),
    maxReplicationLagSeconds: z
      .number()
      .min(0)
      .optional()
      .describe('on a standby: fail when now() - pg_last_xact_replay_timestamp() exceeds this (0 when all received WAL is replayed)'),
    maxConnectionsRatio: z
      .number()
      .gt(0)
      .max(1)
      .optional()
      .describe("fail when client connections (pg_stat_activity, backend_type 'client backend') / max_connections exceeds this, e.g. 0.8"),
  })
  .superRefine((check, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    if (check.expectPrimary === true && check.maxReplicationLagSeconds !== undefined) {
      issue(['maxReplicationLagSeconds'], 'applies only to a standby (expectPrimary: true has no replication lag)');
    }
    let fromUrl: ReturnType<typeof splitSslParams>;
    try {
      fromUrl = splitSslParams(check.url);
    } catch {
      return; // the URL rule reports it
    }
    for (const name of fromUrl.others) issue(['url'], `?${name}= is not used: TLS is set with sslmode and tls (ca, cert and key as PEM text, e.g. \${file:/path})`);
    if (fromUrl.sslmode !== undefined && !(SSL_MODES as readonly string[]).includes(fromUrl.sslmode)) {
      const fallback = fromUrl.sslmode === 'prefer' || fromUrl.sslmode === 'allow' ? ` (${fromUrl.sslmode} falls back to plaintext without telling; a check should know which it gets)` : '';
      issue(['url'], `?sslmode=${fromUrl.sslmode} is not supported: use ${SSL_MODES.join(', ')}${fallback}`);
      return;
    }
    if (fromUrl.sslmode !== undefined && check.sslmode !== undefined && fromUrl.sslmode !== check.sslmode) {
      issue(['sslmode'], `${check.sslmode} contradicts ?sslmode=${fromUrl.sslmode} in the url`);
      return;
    }
    const mode = effectiveSslMode(check);
    if (check.tls !== undefined) {
      if (mode === 'disable') issue(['tls'], 'TLS options need sslmode require, verify-ca or verify-full');
      if (check.tls.insecureSkipVerify) issue(['tls', 'insecureSkipVerify'], 'is not used with postgres: sslmode require encrypts without verifying the certificate');
      if ((check.tls.cert === undefined) !== (check.tls.key === undefined)) issue(['tls', check.tls.cert === undefined ? 'cert' : 'key'], 'a client certificate needs both cert and key');
      if (check.tls.serverName !== undefined && mode !== 'verify-full') issue(['tls', 'serverName'], 'applies only with sslmode verify-full (the other modes do not check the name)');
    }
    if (mode === 'verify-ca' && check.tls?.ca === undefined) {
      issue(check.tls === undefined ? ['sslmode'] : ['tls'], 'sslmode verify-ca needs tls.ca (with the system CAs any certificate a public CA issued would pass; use verify-full for those)');
    }
  });

export type PostgresCheckConfig = KindCheckConfig<typeof schema>;

const target = (check: PostgresCheckConfig) => {
  const url = new URL(check.url);
  return `postgres ${url.hostname}:${url.port || '5432'}`;
};

/** SQLSTATE class 28 = invalid authorization specification (bad password, unknown role, pg_hba refusal). */
const AUTH_SQLSTATE = /^28/;

/**
 * postgres:// — runs `query` (default SELECT 1) on one kept connection, with
 * connectionTimeoutMillis, statement_timeout and query_timeout bounded by the
 * check timeout (statement_timeout makes the server itself give up on a slow
 * query). A connection that timed out is reset (RST: the backend notices at
 * once) and the next run connects afresh. A kept connection found dead at the
 * start of a run (closed by the server while idle) is replaced once within
 * the same attempt.
 */
function createPostgresProbe(check: PostgresCheckConfig, context: ProbeContext): Probe {
  // the driver loads with the first postgres check, not with the sidecar
  const { Client } = requirePg();
  const where = target(check);
  // TLS as libpq means sslmode (see postgres-checks.ts); the URL pg sees has no ssl* parameters left
  const sslmode = effectiveSslMode(check);
  const ssl = postgresSslOption(sslmode, check.tls);
  const connectionString = splitSslParams(check.url).url;
  const certs = (context.certExpiry ?? new CertExpiryRegistry()).recorder(check.name, check.kind);
  /** the certificate the current connection's server presented, and the TLS version */
  let tlsSeen: { certificate: CertExpiry | undefined; version: string } | undefined;
  let client: pg.Client | undefined;
  // db.client.connection.count (pool name = check name): the one kept connection, idle between runs
  const instruments = probeInstruments(check, context.metrics, () => (client ? { idle: instruments.busy ? 0 : 1, used: instruments.busy ? 1 : 0 } : { idle: 0, used: 0 }));

  function socketOf(target: pg.Client) {
    return (target as unknown as { connection?: { stream?: import('node:net').Socket } }).connection?.stream;
  }

  function destroy(target: pg.Client | undefined) {
    if (!target) return;
    if (client === target) client = undefined;
    target.removeAllListeners('end');
    // end() waits for the server to close; a hung server never does, so reset the socket.
    hardClose(socketOf(target));
    target.end().catch(() => undefined);
  }

  async function open(signal: AbortSignal): Promise<pg.Client> {
    const fresh = new Client({
      connectionString,
      ssl,
      connectionTimeoutMillis: check.timeout,
      statement_timeout: check.timeout,
      query_timeout: check.timeout,
      // identifiable in pg_stat_activity (one backend per check)
      application_name: `otel-health-sidecar:${check.name}`,
      keepAlive: true,
    });
    let connected = false;
    fresh.on('error', () => {
      // The server went away: pg reports an unexpected end as 'error' first, and destroy()
      // removes the 'end' listener below, so the loss is reported from here.
      const kept = connected && client === fresh;
      destroy(fresh);
      if (kept) context.onConnectionLost?.('postgres connection lost');
    });
    client = fresh;
    try {
      await abortable(fresh.connect(), signal, () => destroy(fresh));
    } catch (err) {
      destroy(fresh);
      throw err;
    }
    connected = true;
    if (ssl) {
      const socket = socketOf(fresh) as TLSSocket | undefined;
      tlsSeen = { certificate: certificateExpiry(socket?.getPeerCertificate?.(true)), version: socket?.getProtocol?.() ?? 'TLS' };
      if (tlsSeen.certificate) certs.record(tlsSeen.certificate);
    }
    fresh.once('end', () => {
      if (client === fresh) {
        client = undefined;
        context.onConnectionLost?.('postgres connection closed');
      }
    });
    return fresh;
  }

  async function query(active: pg.Client, signal: AbortSignal): Promise<pg.QueryArrayResult> {
    return abortable(active.query({ text: check.query, rowMode: 'array' }), signal, () => destroy(active));
  }

  /** `maxConnectionsRatio`: client backends against max_connections, on the probe's connection */
  async function connections(active: pg.Client, signal: AbortSignal, ratio: number): Promise<ProbeResult> {
    let row: { connections: number; max_connections: number; reserved: number } | undefined;
    try {
      row = (await abortable(active.query<{ connections: number; max_connections: number; reserved: number }>(POSTGRES_CONNECTIONS_QUERY), signal, () => destroy(active))).rows[0];
    } catch (err) {
      if (signal.aborted) throw err;
      throw new ProbeFailure(probeErrorCode(err), context.redactor.text(`${where}: connection count query failed: ${errorMessage(err)}`), { cause: err });
    }
    if (!row) throw new ProbeFailure(PROBE_ERROR.protocol, `${where}: connection count query returned no row`);
    return evaluateConnections({ connections: row.connections, maxConnections: row.max_connections, reserved: row.reserved }, ratio);
  }

  async function runOnce(signal: AbortSignal): Promise<ProbeResult> {
    let result: pg.QueryArrayResult;
    try {
      const kept = client;
      try {
        result = await query(kept ?? (await open(signal)), signal);
      } catch (err) {
        if (!kept || signal.aborted || !isStaleConnectionError(err)) throw err;
        destroy(kept);
        result = await query(await open(signal), signal);
      }
    } catch (err) {
      if (signal.aborted) throw err;
      destroy(client);
      const code = (err as { code?: string }).code ?? '';
      const message = errorMessage(err);
      throw new ProbeFailure(AUTH_SQLSTATE.test(code) ? PROBE_ERROR.auth : probeErrorCode(err), context.redactor.text(`${where}: ${AUTH_SQLSTATE.test(code) ? `authentication failed (${message})` : message}`), { cause: err });
    }
    let message = context.redactor.text(`${check.query.slice(0, 40)}: ${result.rowCount ?? 0} row(s)`);
    const active = client;
    if (!active) throw new ProbeFailure(PROBE_ERROR.connect, `${where}: connection closed after the query`);
    if (check.expectPrimary !== undefined || check.maxReplicationLagSeconds !== undefined) {
      // primary/standby and replay lag on the same connection (see replication.ts)
      const replication = await checkPostgresReplication(active, signal, check, where, message, context.redactor, () => destroy(active));
      if (!replication.ok) return replication;
      message = replication.message;
    }
    if (check.maxConnectionsRatio !== undefined) {
      const headroom = await connections(active, signal, check.maxConnectionsRatio);
      if (!headroom.ok) return { ok: false, message: context.redactor.text(`${where}: ${headroom.message}`) };
      message = `${message}; ${headroom.message}`;
    }
    if (tlsSeen) {
      const validity = minValidityVerdict(tlsSeen.certificate, check.tls ?? {});
      if (validity.state === 'fail') return { ok: false, message: context.redactor.text(`${where}: ${message}, but ${validity.message}`) };
      message = `${message}; ${tlsSeen.version} (sslmode ${sslmode})${validity.state === 'warn' ? `; ${validity.message}` : ''}`;
    }
    return { ok: true, message };
  }

  return {
    run: (signal) => instruments.track(() => runOnce(signal)),
    async close() {
      instruments.close();
      certs.clear();
      const current = client;
      client = undefined;
      current?.removeAllListeners('end');
      if (current) await closePolitely(() => current.end(), () => destroy(current));
    },
  };
}

export const postgresKind: ProbeKind<PostgresCheckConfig> = {
  kind: 'postgres',
  schema,
  create: createPostgresProbe,
  targetField: 'url',
  placeholder: 'postgres://unset.invalid:1',
  target,
  secrets: (check) => [...urlSecrets(check.url), ...(check.tls?.key ? [check.tls.key] : [])],
  // tls.key is masked by the Redactor's secret-named keys (and is among the secrets)
  redact: (check, redactor) => ({ ...check, url: redactor.url(check.url) }),
};
