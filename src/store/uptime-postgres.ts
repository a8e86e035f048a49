/**
 * Uptime history in the monitor store (`store.postgres`, monitor modes): the
 * UptimeStore of persist/uptime-store.ts in two tables, minute buckets (kept
 * 25 hours) and hour buckets (kept 31 days), like the Redis store's keys.
 * Every write adds deltas (INSERT … ON CONFLICT DO UPDATE SET x = x + delta),
 * never rewriting a bucket whole, so two writers (an old and a new pod, two
 * shards during a hand-over) add up. The tables come with the store's
 * migrations (applied here too, under the same advisory lock, if this store
 * is the first to connect).
 */
import type { Pool } from 'pg';
import { HOUR_MS, MINUTE_MS, type Counts, type StoredHistory } from '../health/history';
import type { MinuteDelta, UptimeStore } from '../persist/uptime-store';
import { migrate } from './migrations';
import { requirePg } from '../probes/pg-driver';

const MINUTES_KEPT = 25 * 60;
const HOURS_KEPT = 31 * 24;

export class PostgresUptimeStore implements UptimeStore {
  private readonly pool: Pool;
  private migrated: Promise<unknown> | undefined;

  constructor(url: string) {
    // the driver loads with the store, not with every sidecar (a config without PostgreSQL loads no pg)
    const { Pool } = requirePg();
    this.pool = new Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 2000, idleTimeoutMillis: 10_000, query_timeout: 5000, application_name: 'otel-health-sidecar-uptime' });
    this.pool.on('error', () => undefined);
  }

  private ready(): Promise<unknown> {
    this.migrated ??= this.pool.connect().then(
      (client) => migrate(client).finally(() => client.release()),
    ).catch((err) => {
      this.migrated = undefined; // try again on the next call
      throw err;
    });
    return this.migrated;
  }

  async add(deltas: readonly MinuteDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    await this.ready();
    const columns = { monitor: [] as string[], minute: [] as number[], hour: [] as number[], ok: [] as number[], failed: [] as number[], rejected: [] as number[], latency: [] as number[] };
    for (const { check, minute, counts } of deltas) {
      columns.monitor.push(check);
      columns.minute.push(minute);
      columns.hour.push(Math.floor(minute / 60));
      columns.ok.push(Math.round(counts.ok));
      columns.failed.push(Math.round(counts.failed));
      columns.rejected.push(Math.round(counts.rejected));
      columns.latency.push(Math.round(counts.latencyUs));
    }
    const add = (table: string, key: string, keys: number[]) =>
      `INSERT INTO ${table} (monitor, ${key}, ok, failed, rejected, latency_us)
       SELECT monitor, k, sum(ok), sum(failed), sum(rejected), sum(lat)
         FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS d(monitor, k, ok, failed, rejected, lat)
        GROUP BY monitor, k
       ON CONFLICT (monitor, ${key}) DO UPDATE SET ok = ${table}.ok + excluded.ok, failed = ${table}.failed + excluded.failed,
         rejected = ${table}.rejected + excluded.rejected, latency_us = ${table}.latency_us + excluded.latency_us`;
    const values = (keys: number[]) => [columns.monitor, keys, columns.ok, columns.failed, columns.rejected, columns.latency];
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      await client.query(add('ohs_uptime_minute', 'minute', columns.minute), values(columns.minute));
      await client.query(add('ohs_uptime_hour', 'hour', columns.hour), values(columns.hour));
      const now = Math.floor(Date.now() / MINUTE_MS);
      await client.query('DELETE FROM ohs_uptime_minute WHERE minute < $1', [now - MINUTES_KEPT]);
      await client.query('DELETE FROM ohs_uptime_hour WHERE hour < $1', [Math.floor(now / 60) - HOURS_KEPT]);
      await client.query('COMMIT');
    } catch (err) {
      broken = true;
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async load(check: string, now: number): Promise<StoredHistory> {
    await this.ready();
    const minute = Math.floor(now / MINUTE_MS);
    const hour = Math.floor(now / HOUR_MS);
    const [minutes, hours] = await Promise.all([
      this.pool.query('SELECT minute, ok, failed, rejected, latency_us FROM ohs_uptime_minute WHERE monitor = $1 AND minute > $2 AND minute <= $3', [check, minute - 24 * 60, minute]),
      this.pool.query('SELECT hour, ok, failed, rejected, latency_us FROM ohs_uptime_hour WHERE monitor = $1 AND hour > $2 AND hour <= $3', [check, hour - 30 * 24, hour]),
    ]);
    const counts = (r: Record<string, string>): Counts => ({ ok: Number(r.ok), failed: Number(r.failed), rejected: Number(r.rejected), latencyUs: Number(r.latency_us) });
    return {
      minutes: minutes.rows.map((r) => ({ minute: Number(r.minute), counts: counts(r) })),
      hours: hours.rows.map((r) => ({ hour: Number(r.hour), counts: counts(r) })),
    };
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}
