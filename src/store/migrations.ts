/**
 * The store's schema, as versioned SQL shipped with the product. Applied at
 * start, in order, each in its own transaction, under a PostgreSQL advisory
 * lock so that replicas starting together apply each migration once; the
 * versions applied are kept in `ohs_migrations`. A shipped migration is never
 * edited: a change is a new version.
 */
import type { PoolClient } from 'pg';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'monitors, audit log, run history, idempotency keys',
    sql: `
CREATE TABLE ohs_monitors (
  name        text PRIMARY KEY,
  body        jsonb NOT NULL,
  version     integer NOT NULL DEFAULT 1,
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text NOT NULL
);
CREATE TABLE ohs_audit (
  id       bigserial PRIMARY KEY,
  at       timestamptz NOT NULL DEFAULT now(),
  actor    text NOT NULL,
  action   text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
  monitor  text NOT NULL,
  before   jsonb,
  after    jsonb
);
CREATE INDEX ohs_audit_monitor ON ohs_audit (monitor, id);
CREATE TABLE ohs_runs_minute (
  monitor         text NOT NULL,
  minute          timestamptz NOT NULL,
  runs            integer NOT NULL,
  failures        integer NOT NULL,
  latency_sum_ms  double precision NOT NULL,
  latency_max_ms  double precision NOT NULL,
  PRIMARY KEY (monitor, minute)
);
CREATE INDEX ohs_runs_minute_minute ON ohs_runs_minute (minute);
CREATE TABLE ohs_idempotency (
  actor       text NOT NULL,
  key         text NOT NULL,
  request     text NOT NULL,
  status      integer,
  response    jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (actor, key)
);
`,
  },
  {
    version: 2,
    name: 'uptime history (minute buckets for 25 h, hour buckets for 31 days)',
    sql: `
CREATE TABLE ohs_uptime_minute (
  monitor     text NOT NULL,
  minute      bigint NOT NULL,
  ok          bigint NOT NULL DEFAULT 0,
  failed      bigint NOT NULL DEFAULT 0,
  rejected    bigint NOT NULL DEFAULT 0,
  latency_us  bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (monitor, minute)
);
CREATE INDEX ohs_uptime_minute_minute ON ohs_uptime_minute (minute);
CREATE TABLE ohs_uptime_hour (
  monitor     text NOT NULL,
  hour        bigint NOT NULL,
  ok          bigint NOT NULL DEFAULT 0,
  failed      bigint NOT NULL DEFAULT 0,
  rejected    bigint NOT NULL DEFAULT 0,
  latency_us  bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (monitor, hour)
);
CREATE INDEX ohs_uptime_hour_hour ON ohs_uptime_hour (hour);
`,
  },
];

/** the advisory lock key the migrations run under ("ohs-migrate" as a number) */
export const MIGRATION_LOCK = 0x6f68_735f_6d69;

/** Apply the migrations not yet applied; returns the versions applied now. */
export async function migrate(client: PoolClient, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const applied: number[] = [];
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS ohs_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await client.query<{ version: number }>('SELECT version FROM ohs_migrations');
    const done = new Set(rows.map((r) => r.version));
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(migration.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO ohs_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`store migration ${migration.version} (${migration.name}) failed: ${(err as Error).message}`);
      }
      applied.push(migration.version);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
  return applied;
}
