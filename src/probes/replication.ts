/**
 * Replication-aware checks for redis (`role`, `maxReplicationLagSeconds` from
 * INFO replication) and postgres (`expectPrimary`, `maxReplicationLagSeconds`
 * from pg_is_in_recovery() and the replay timestamp). The verdicts are pure
 * functions of what the server reported; the probes ask on their own connection
 * after their PING / query succeeded (redis.ts sends INFO replication itself,
 * postgres.ts calls checkPostgresReplication below).
 */
import type pg from 'pg';
import { ProbeFailure, PROBE_ERROR, probeErrorCode } from '../errors';
import type { Redactor } from '../redact';
import { abortable, errorMessage, type ProbeResult } from './probe';

// ---------------------------------------------------------------- Redis

export interface RedisReplicationOptions {
  role?: 'master' | 'replica';
  maxReplicationLagSeconds?: number;
}

/** `INFO replication` text → key/value pairs. */
export function parseRedisInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const at = line.indexOf(':');
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return out;
}

/**
 * Pure verdict on INFO replication. Redis says `role:slave` for a replica.
 * On a replica: a master link that is down fails (it is not replicating), and
 * `master_last_io_seconds_ago` above maxReplicationLagSeconds fails. That
 * number is "seconds since the last byte from the master"; an idle master only
 * pings every repl-ping-replica-period (10 s by default), so a threshold below
 * that period flaps on an idle master.
 */
export function evaluateRedisReplication(info: Record<string, string>, options: RedisReplicationOptions): ProbeResult {
  const role = info.role === 'slave' ? 'replica' : info.role;
  if (role !== 'master' && role !== 'replica') return { ok: false, message: `INFO replication has no role (got ${JSON.stringify(info.role ?? '')})` };
  const master = role === 'replica' ? `${info.master_host ?? '?'}:${info.master_port ?? '?'}` : '';
  if (options.role !== undefined && options.role !== role) {
    return { ok: false, message: role === 'replica' ? `role replica (of ${master}), expected master` : `role master, expected replica` };
  }
  if (role === 'master') return { ok: true, message: `role master, ${info.connected_slaves ?? '0'} connected replica(s)` };
  if (info.master_link_status !== 'up') {
    const since = info.master_link_down_since_seconds;
    return { ok: false, message: `role replica of ${master}, master link ${info.master_link_status ?? 'unknown'}${since !== undefined && since !== '-1' ? ` for ${since}s` : ''}` };
  }
  const lag = Number(info.master_last_io_seconds_ago);
  const lagText = Number.isFinite(lag) ? `last I/O from the master ${lag}s ago` : 'last I/O from the master unknown';
  if (options.maxReplicationLagSeconds !== undefined && (!Number.isFinite(lag) || lag > options.maxReplicationLagSeconds)) {
    return { ok: false, message: `role replica of ${master}, master link up, ${lagText}, more than maxReplicationLagSeconds ${options.maxReplicationLagSeconds}` };
  }
  return { ok: true, message: `role replica of ${master}, master link up, ${lagText}` };
}

// ---------------------------------------------------------------- PostgreSQL

export interface PostgresReplicationOptions {
  expectPrimary?: boolean;
  maxReplicationLagSeconds?: number;
}

/**
 * In recovery = a standby (or a server restoring from archive). Lag: 0 when
 * every WAL record received has been replayed (an idle primary sends nothing,
 * so "time since the last replayed transaction" would grow without any lag);
 * otherwise now() - pg_last_xact_replay_timestamp(). NULL when nothing was
 * replayed yet.
 */
export const POSTGRES_REPLICATION_QUERY = `SELECT pg_is_in_recovery() AS in_recovery,
  CASE WHEN NOT pg_is_in_recovery() THEN NULL
       WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
       ELSE EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))::float8 END AS lag_seconds`;

export interface PostgresReplicationRow {
  inRecovery: boolean;
  /** seconds, or null on a primary / when nothing was replayed yet */
  lagSeconds: number | null;
}

const seconds = (s: number) => `${Math.round(s * 10) / 10}s`;

/** Pure verdict on the replication row. */
export function evaluatePostgresReplication(row: PostgresReplicationRow, options: PostgresReplicationOptions): ProbeResult {
  if (!row.inRecovery) {
    if (options.expectPrimary === false) return { ok: false, message: 'primary (pg_is_in_recovery() = false), expected a standby' };
    return { ok: true, message: 'primary' };
  }
  if (options.expectPrimary === true) return { ok: false, message: 'standby (pg_is_in_recovery() = true), expected the primary' };
  if (options.maxReplicationLagSeconds === undefined) return { ok: true, message: row.lagSeconds === null ? 'standby' : `standby, replay lag ${seconds(row.lagSeconds)}` };
  if (row.lagSeconds === null) return { ok: false, message: 'standby, replay lag unknown (no transaction replayed yet)' };
  if (row.lagSeconds > options.maxReplicationLagSeconds) {
    return { ok: false, message: `standby, replay lag ${seconds(row.lagSeconds)}, more than maxReplicationLagSeconds ${options.maxReplicationLagSeconds}` };
  }
  return { ok: true, message: `standby, replay lag ${seconds(row.lagSeconds)}` };
}

/** The replication query on the probe's connection, then the verdict. `prefix` is the probe's success message so far. */
export async function checkPostgresReplication(
  client: pg.Client,
  signal: AbortSignal,
  options: PostgresReplicationOptions,
  where: string,
  prefix: string,
  redactor: Redactor,
  onAbort: () => void,
): Promise<ProbeResult> {
  let row: { in_recovery: boolean; lag_seconds: number | string | null } | undefined;
  try {
    row = (await abortable(client.query<{ in_recovery: boolean; lag_seconds: number | string | null }>(POSTGRES_REPLICATION_QUERY), signal, onAbort)).rows[0];
  } catch (err) {
    if (signal.aborted) throw err;
    throw new ProbeFailure(probeErrorCode(err), redactor.text(`${where}: replication query failed: ${errorMessage(err)}`), { cause: err });
  }
  if (!row) throw new ProbeFailure(PROBE_ERROR.protocol, `${where}: replication query returned no row`);
  const verdict = evaluatePostgresReplication({ inRecovery: row.in_recovery, lagSeconds: row.lag_seconds === null ? null : Number(row.lag_seconds) }, options);
  return verdict.ok ? { ok: true, message: `${prefix}; ${verdict.message}` } : { ok: false, message: redactor.text(`${where}: ${verdict.message}`) };
}
