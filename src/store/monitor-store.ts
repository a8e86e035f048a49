/**
 * Monitors kept in PostgreSQL (`store.postgres`, docs/api.md): the monitors
 * as their owners wrote them (a `${VAR}` reference stays a reference), an
 * audit log of every change (who, when, before, after) written in the same
 * transaction as the change, per-minute run aggregates with a retention, and
 * the answers of idempotent creates. Every write is one transaction, and a
 * write naming a version (If-Match) changes the row only if it still has that
 * version, so concurrent writers never half-write. Each change is announced
 * with NOTIFY on one channel; `listen` hears them (other replicas resync).
 */
import type { Client, Pool, PoolClient } from 'pg';
import { migrate } from './migrations';
import { requirePg } from '../probes/pg-driver';

export const NOTIFY_CHANNEL = 'ohs_monitors';
/** the advisory lock creates take turns under ("ohs-create") */
const CREATE_LOCK = 0x6f68_735f_6372;

export interface StoredMonitor {
  name: string;
  /** the check as written (references kept) */
  body: Record<string, unknown>;
  version: number;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  updatedBy: string;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: 'create' | 'update' | 'delete';
  monitor: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

export interface MinuteAggregate {
  minute: number;
  runs: number;
  failures: number;
  latencySumMs: number;
  latencyMaxMs: number;
}

/** Why a write was refused (the API maps each to its status). */
export class StoreError extends Error {
  constructor(
    readonly reason: 'unavailable' | 'not_found' | 'exists' | 'stale' | 'limit' | 'idempotency_mismatch',
    message: string,
  ) {
    super(message);
  }
}

/** a connection-level failure (the server is down, restarting, unreachable), as opposed to a bad statement */
export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (typeof e?.code === 'string') {
    if (/^(08|57P0|53)/.test(e.code)) return true; // connection exception, admin shutdown, insufficient resources
    if (/^E[A-Z]+$/.test(e.code)) return true; // ECONNREFUSED, ECONNRESET, ETIMEDOUT…
  }
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(String(e?.message ?? ''));
}

const row = (r: Record<string, unknown>): StoredMonitor => ({
  name: r.name as string,
  body: r.body as Record<string, unknown>,
  version: r.version as number,
  createdAt: (r.created_at as Date).toISOString(),
  createdBy: r.created_by as string,
  updatedAt: (r.updated_at as Date).toISOString(),
  updatedBy: r.updated_by as string,
});

export interface MonitorStoreOptions {
  url: string;
  maxMonitors: number;
  log: (level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string) => void;
}

export class MonitorStore {
  private readonly pool: Pool;
  private listener: Client | undefined;
  private listening = false;
  private wasLost = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private migrated = false;

  constructor(private readonly options: MonitorStoreOptions) {
    // the driver loads with the store, not with every sidecar (a config without PostgreSQL loads no pg)
    const { Pool } = requirePg();
    this.pool = new Pool({ connectionString: options.url, max: 4, connectionTimeoutMillis: 2000, idleTimeoutMillis: 10_000, query_timeout: 5000, application_name: 'otel-health-sidecar' });
    this.pool.on('error', () => undefined); // an idle client lost: the next query reconnects
  }

  /** Apply the migrations (once per process, under the advisory lock). */
  async migrate(): Promise<number[]> {
    if (this.migrated) return [];
    const applied = await this.withClient((client) => migrate(client));
    this.migrated = true;
    return applied;
  }

  private async withClient<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new StoreError('unavailable', `the monitor store (PostgreSQL) is not reachable: ${(err as Error).message}`);
    }
    let broken = false;
    try {
      return await fn(client);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      if (isUnavailable(err)) {
        broken = true;
        throw new StoreError('unavailable', `the monitor store (PostgreSQL) is not reachable: ${(err as Error).message}`);
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  private transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.withClient(async (client) => {
      await this.migrateOn(client);
      await client.query('BEGIN');
      try {
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  private async migrateOn(client: PoolClient): Promise<void> {
    if (this.migrated) return;
    await migrate(client);
    this.migrated = true;
  }

  async list(): Promise<StoredMonitor[]> {
    return this.withClient(async (client) => {
      await this.migrateOn(client);
      const { rows } = await client.query('SELECT * FROM ohs_monitors ORDER BY name');
      return rows.map(row);
    });
  }

  async get(name: string): Promise<StoredMonitor | undefined> {
    return this.withClient(async (client) => {
      await this.migrateOn(client);
      const { rows } = await client.query('SELECT * FROM ohs_monitors WHERE name = $1', [name]);
      return rows[0] ? row(rows[0]) : undefined;
    });
  }

  /**
   * Create a monitor. With an idempotency key, a repeat of the same request
   * by the same actor answers what the first one did (`replayed`), and the
   * same key with a different request is refused.
   */
  async create(
    actor: string,
    name: string,
    body: Record<string, unknown>,
    audit: { after: Record<string, unknown> },
    idempotency?: { key: string; request: string },
  ): Promise<{ monitor: StoredMonitor; replayed: boolean }> {
    return this.transaction(async (client) => {
      if (idempotency) {
        const inserted = await client.query('INSERT INTO ohs_idempotency (actor, key, request) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING key', [actor, idempotency.key, idempotency.request]);
        if (inserted.rowCount === 0) {
          const { rows } = await client.query('SELECT request, response FROM ohs_idempotency WHERE actor = $1 AND key = $2', [actor, idempotency.key]);
          const earlier = rows[0] as { request: string; response: StoredMonitor | null } | undefined;
          if (earlier && earlier.request !== idempotency.request) throw new StoreError('idempotency_mismatch', 'this Idempotency-Key was used with a different request');
          if (earlier?.response) return { monitor: earlier.response, replayed: true };
        }
      }
      // creates take turns (a transaction-scoped lock), so concurrent ones cannot overshoot maxMonitors together
      await client.query('SELECT pg_advisory_xact_lock($1)', [CREATE_LOCK]);
      const { rows: count } = await client.query<{ n: string }>('SELECT count(*) AS n FROM ohs_monitors');
      if (Number(count[0]!.n) >= this.options.maxMonitors) throw new StoreError('limit', `the store holds its maximum of ${this.options.maxMonitors} monitors (store.maxMonitors)`);
      const { rows } = await client.query('INSERT INTO ohs_monitors (name, body, created_by, updated_by) VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO NOTHING RETURNING *', [name, body, actor]);
      if (!rows[0]) throw new StoreError('exists', `a monitor named "${name}" already exists`);
      const monitor = row(rows[0]);
      await client.query("INSERT INTO ohs_audit (actor, action, monitor, before, after) VALUES ($1, 'create', $2, NULL, $3)", [actor, name, audit.after]);
      if (idempotency) await client.query('UPDATE ohs_idempotency SET status = 201, response = $3 WHERE actor = $1 AND key = $2', [actor, idempotency.key, monitor]);
      await client.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, name]);
      return { monitor, replayed: false };
    });
  }

  /** Replace a monitor's body; with `ifVersion`, only if it still has that version. */
  async update(actor: string, name: string, body: Record<string, unknown>, ifVersion: number | undefined, audit: { before: (old: StoredMonitor) => Record<string, unknown>; after: Record<string, unknown> }): Promise<StoredMonitor> {
    return this.transaction(async (client) => {
      const { rows: current } = await client.query('SELECT * FROM ohs_monitors WHERE name = $1 FOR UPDATE', [name]);
      if (!current[0]) throw new StoreError('not_found', `no monitor named "${name}"`);
      const old = row(current[0]);
      if (ifVersion !== undefined && old.version !== ifVersion) throw new StoreError('stale', `monitor "${name}" changed since (now version ${old.version}); GET it again and retry with its ETag`);
      const { rows } = await client.query('UPDATE ohs_monitors SET body = $2, version = version + 1, updated_at = now(), updated_by = $3 WHERE name = $1 RETURNING *', [name, body, actor]);
      await client.query("INSERT INTO ohs_audit (actor, action, monitor, before, after) VALUES ($1, 'update', $2, $3, $4)", [actor, name, audit.before(old), audit.after]);
      await client.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, name]);
      return row(rows[0]);
    });
  }

  async delete(actor: string, name: string, ifVersion: number | undefined, audit: { before: (old: StoredMonitor) => Record<string, unknown> }): Promise<StoredMonitor> {
    return this.transaction(async (client) => {
      const { rows: current } = await client.query('SELECT * FROM ohs_monitors WHERE name = $1 FOR UPDATE', [name]);
      if (!current[0]) throw new StoreError('not_found', `no monitor named "${name}"`);
      const old = row(current[0]);
      if (ifVersion !== undefined && old.version !== ifVersion) throw new StoreError('stale', `monitor "${name}" changed since (now version ${old.version}); GET it again and retry with its ETag`);
      await client.query('DELETE FROM ohs_monitors WHERE name = $1', [name]);
      await client.query('DELETE FROM ohs_runs_minute WHERE monitor = $1', [name]);
      await client.query("INSERT INTO ohs_audit (actor, action, monitor, before, after) VALUES ($1, 'delete', $2, $3, NULL)", [actor, name, audit.before(old)]);
      await client.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, name]);
      return old;
    });
  }

  async audit(options: { monitor?: string; limit: number }): Promise<AuditEntry[]> {
    return this.withClient(async (client) => {
      await this.migrateOn(client);
      const { rows } = await client.query(
        'SELECT * FROM ohs_audit WHERE ($1::text IS NULL OR monitor = $1) ORDER BY id DESC LIMIT $2',
        [options.monitor ?? null, options.limit],
      );
      return rows.map((r) => ({ id: Number(r.id), at: (r.at as Date).toISOString(), actor: r.actor, action: r.action, monitor: r.monitor, before: r.before, after: r.after }));
    });
  }

  /** Add per-minute run aggregates (summed with what other writers added) and drop those older than the retention. */
  async recordRuns(aggregates: ReadonlyMap<string, readonly MinuteAggregate[]>, retentionMs: number): Promise<void> {
    await this.withClient(async (client) => {
      await this.migrateOn(client);
      const names: string[] = [], minutes: Date[] = [], runs: number[] = [], failures: number[] = [], sums: number[] = [], maxes: number[] = [];
      for (const [name, list] of aggregates) {
        for (const a of list) {
          names.push(name);
          minutes.push(new Date(a.minute));
          runs.push(a.runs);
          failures.push(a.failures);
          sums.push(a.latencySumMs);
          maxes.push(a.latencyMaxMs);
        }
      }
      if (names.length) {
        await client.query(
          `INSERT INTO ohs_runs_minute (monitor, minute, runs, failures, latency_sum_ms, latency_max_ms)
           SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::int[], $5::float8[], $6::float8[])
           ON CONFLICT (monitor, minute) DO UPDATE SET runs = ohs_runs_minute.runs + excluded.runs, failures = ohs_runs_minute.failures + excluded.failures,
             latency_sum_ms = ohs_runs_minute.latency_sum_ms + excluded.latency_sum_ms, latency_max_ms = greatest(ohs_runs_minute.latency_max_ms, excluded.latency_max_ms)`,
          [names, minutes, runs, failures, sums, maxes],
        );
      }
      await client.query('DELETE FROM ohs_runs_minute WHERE minute < now() - make_interval(secs => $1)', [retentionMs / 1000]);
    });
  }

  async results(name: string, sinceMs: number): Promise<MinuteAggregate[]> {
    return this.withClient(async (client) => {
      await this.migrateOn(client);
      const { rows } = await client.query('SELECT * FROM ohs_runs_minute WHERE monitor = $1 AND minute >= $2 ORDER BY minute', [name, new Date(sinceMs)]);
      return rows.map((r) => ({ minute: (r.minute as Date).getTime(), runs: r.runs, failures: r.failures, latencySumMs: r.latency_sum_ms, latencyMaxMs: r.latency_max_ms }));
    });
  }

  /**
   * Hear every change (NOTIFY on NOTIFY_CHANNEL) on a connection of its own;
   * lost, it is re-established with backoff, and `onChange` is called once it
   * is back (what was missed meanwhile is found by a resync).
   */
  listen(onChange: (name: string | undefined) => void, backoffMs = 500): void {
    const connect = async (attempt: number): Promise<void> => {
      if (this.closed) return;
      const { Client } = requirePg();
      const client = new Client({ connectionString: this.options.url, connectionTimeoutMillis: 2000, application_name: 'otel-health-sidecar-listen' });
      client.on('error', () => undefined);
      const lost = () => {
        if (this.listener !== client) return;
        this.listener = undefined;
        if (this.listening) this.options.log('warn', {}, 'monitor store: change feed (LISTEN) lost; reconnecting (probing goes on with the monitors in memory)');
        this.listening = false;
        this.wasLost = true;
        this.retryLater(() => connect(0), backoffMs);
      };
      try {
        await client.connect();
        if (this.closed) return void (await client.end().catch(() => undefined));
        client.on('notification', (message) => onChange(message.payload || undefined));
        client.on('end', lost);
        client.on('error', lost);
        await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
        this.listener = client;
        this.listening = true;
        if (this.wasLost) this.options.log('info', {}, 'monitor store: change feed (LISTEN) re-established; reading the store again');
        this.wasLost = false;
        onChange(undefined); // caught up: whatever changed while not listening
      } catch {
        await client.end().catch(() => undefined);
        this.retryLater(() => connect(attempt + 1), Math.min(5000, backoffMs * 2 ** Math.min(attempt, 4)));
      }
    };
    void connect(0);
  }

  private retryLater(fn: () => Promise<void>, ms: number): void {
    if (this.closed) return;
    if (this.retry) clearTimeout(this.retry);
    this.retry = setTimeout(() => void fn(), ms);
    this.retry.unref?.();
  }

  /** is the change feed connected? */
  get live(): boolean {
    return this.listening;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}
